"""The README's session is real: run it as a doctest."""

from __future__ import annotations

import doctest
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_session_runs_as_shown():
    parser = doctest.DocTestParser()
    test = parser.get_doctest(README.read_text(), {}, "README", str(README), 0)
    assert test.examples, "the README lost its session"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0
