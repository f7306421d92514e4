"""Bad input to the notebook layer: a clear error naming what is wrong, nothing written, and
in a notebook a short error rather than a long traceback."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

import convex_notebook as cn


@pytest.fixture
def app() -> Any:
    backend = cn.Backend(echo_logs=False)
    yield backend
    backend.close()


# -- app.import_dataframe's options ------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"nan": "bogus"}, "nan= takes 'keep', 'missing' or 'null', got 'bogus'"),
        ({"atomic": "no"}, "atomic= takes True, False or None, got 'no'"),
        ({"keep_ids": "yes"}, "keep_ids= takes True, False or None, got 'yes'"),
        ({"progress": "x"}, "progress= takes True, False or None, got 'x'"),
        ({"batch_size": True}, "batch_size must be a positive integer, got True"),
    ],
)
def test_a_wrong_import_option_is_refused_and_writes_nothing(app: Any, option: dict, message: str) -> None:
    # nan="bogus" was read as "null", atomic="no" as True: a typo silently changed the import.
    frame = pd.DataFrame({"a": [1.0, float("nan")]})
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        app.import_dataframe("t", frame, **option)
    assert app.table_names() == []
