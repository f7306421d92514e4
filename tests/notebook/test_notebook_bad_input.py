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


# -- short errors in a notebook ---------------------------------------------------------------


def run(shell: Any, source: str) -> Any:
    """Run a cell; raise what it raised (UsageError included)."""
    result = shell.run_cell(source)
    error = result.error_before_exec or result.error_in_exec
    if error is not None:
        raise error
    return result.result


BAD_FRAMES = [
    ("pd.DataFrame([[1, 2]], columns=['a', 'a'])", "Duplicate column names: ['a']"),
    ("pd.DataFrame({0: [1]})", "must be strings, got 0"),
    ("pd.DataFrame({'a': [2**60]})", "df.astype({'a': 'Int64'})"),
    # Past Int64's range, Int64 is no way out: the hint says so.
    ("pd.DataFrame({'a': np.array([2**63], dtype=np.uint64)})", "no integer type past 2^63 - 1"),
    ("pd.DataFrame({'a': pd.period_range('2024-01', periods=2, freq='M')})", "has dtype period[M], which has no Convex type"),
    ("5", "Expected a pandas DataFrame, got int"),
]


@pytest.mark.parametrize(("frame", "message"), BAD_FRAMES)
def test_a_frame_that_cannot_become_documents_is_a_short_error(shell: Any, frame: str, message: str) -> None:
    # These were plain TypeError/ValueError: IPython showed 40-50 lines of the adapter's code.
    run(shell, f"import numpy as np\nimport pandas as pd\nimport convex_notebook as cn\nbad = {frame}\napp = cn.Backend()")
    with pytest.raises(cn.InvalidValueError) as info:
        run(shell, "app.import_dataframe('t', bad)")
    assert message in str(info.value)
    assert len(shell.tracebacks[-1]) <= 3  # the error, the cell's line, the hint
    with pytest.raises(cn.InvalidValueError):
        run(shell, "%convex import t bad")
    assert len(shell.tracebacks[-1]) == 1
    assert shell.user_ns["app"].table_names() == []


# -- app.df's arguments -----------------------------------------------------------------------


def test_df_of_a_mistyped_query_path_is_not_an_empty_table(app: Any) -> None:
    # Any name that was neither a table nor a query gave an empty frame, "a table without
    # documents yet": a typo in a query's path (or a system table) looked like no data.
    @app.query
    def listed(ctx: Any) -> Any:
        return ctx.db.query("t").collect()

    app.run(lambda ctx: ctx.db.insert("t", {"a": 1}))
    with pytest.raises(cn.ConvexFunctionError, match="Could not find public function for 'tasks:lst'"):
        app.df("tasks:lst")
    with pytest.raises(cn.ConvexFunctionError, match="'bad name!'"):
        app.df("bad name!")
    assert list(app.df("not_yet").columns) == ["_id", "_creationTime"]  # a table to come: still empty
    assert list(app.df("likes/counts").columns) == ["_id", "_creationTime"]  # a component's table


def test_df_of_a_system_table_says_how_to_read_it(app: Any) -> None:
    app.run(lambda ctx: ctx.storage.store(b"hello"))
    with pytest.raises(cn.InvalidValueError, match=r"'_storage' is a system table.*ctx\.db\.system\.query\('_storage'\)"):
        app.df("_storage")


@pytest.mark.parametrize(("source", "message"), [(None, "got NoneType"), (5, "got int")])
def test_df_of_something_else_names_what_it_takes(app: Any, source: Any, message: str) -> None:
    with pytest.raises(cn.InvalidValueError, match=f"takes a table name, a query's path or documents.*{message}"):
        app.df(source)


def test_df_of_a_query_with_arguments_that_are_not_a_dict(app: Any) -> None:
    @app.query
    def numbers(ctx: Any, n: float = 1) -> Any:
        return [{"n": n}]

    with pytest.raises(cn.ValidationError, match="must be a dict of named arguments, got list"):
        app.df("numbers", [1])


# -- %convex import / export ------------------------------------------------------------------


def magics_app(shell: Any) -> Any:
    from convex_notebook.notebook.magics import current_magics

    magics = current_magics(shell)
    assert magics is not None
    return magics.current_app()


def test_import_of_a_list_that_is_not_documents_is_refused(shell: Any) -> None:
    from IPython.core.error import UsageError

    # A list of numbers was imported as documents {"value": 1.0}, {"value": 2.0}.
    run(shell, "numbers = [1, 2]")
    with pytest.raises(UsageError, match=r"^%convex import: numbers is a list of int, not of documents \(dicts\)"):
        run(shell, "%convex import t numbers")
    assert magics_app(shell).table_names() == []


def test_a_file_of_unknown_format_is_a_one_line_usage_error(shell: Any, tmp_path: Any) -> None:
    from IPython.core.error import UsageError

    # Both showed the 44-52 lines of io/tables.py's ValueError.
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(UsageError, match=r"^%convex import: cannot tell the format of .*notes.txt.* add --format csv, jsonl or json$"):
        run(shell, f"%convex import t {notes}")
    magics_app(shell).run(lambda ctx: ctx.db.insert("tasks", {"text": "a"}))
    out = tmp_path / "tasks.xyz"
    with pytest.raises(UsageError, match=r"^%convex export: cannot tell the format of .*tasks.xyz.* add --format"):
        run(shell, f"%convex export tasks {out}")
    assert not out.exists() and magics_app(shell).table_names() == ["tasks"]


def test_export_of_a_table_that_does_not_exist_is_refused(shell: Any, tmp_path: Any) -> None:
    from IPython.core.error import UsageError

    # A typo exported an empty frame, or wrote an empty file, where %convex data refused it.
    magics_app(shell).run(lambda ctx: ctx.db.insert("tasks", {"text": "a"}))
    out = tmp_path / "taks.csv"
    with pytest.raises(UsageError, match=r"^%convex export: no table named 'taks'. Did you mean tasks\? Tables: tasks$"):
        run(shell, f"%convex export taks {out}")
    assert not out.exists()
    with pytest.raises(UsageError, match="no table named 'taks'"):
        run(shell, "%convex export taks -o frame")
    assert "frame" not in shell.user_ns


@pytest.mark.parametrize(
    ("line", "option"),
    [
        ("%convex data tasks --limit -1", "--limit"),
        ("%convex data tasks --limit -1 --at 0s", "--limit"),
        ("%convex logs -n -5", "-n"),
        ("%convex live tasks:list --max-rows -3", "--max-rows"),
        ("%%convex_query --max-rows -3\nctx.db.query('tasks').collect()", "--max-rows"),
    ],
)
def test_a_negative_count_is_refused(shell: Any, line: str, option: str) -> None:
    from IPython.core.error import UsageError

    # --limit -1 said "tasks: no documents" (with --at: every document but the oldest);
    # -n -5 showed every entry.
    magics_app(shell).run(lambda ctx: ctx.db.insert("tasks", {"text": "a"}))
    with pytest.raises(UsageError, match=f"argument {option}: '-\\d': give a whole number, 0 or more"):
        run(shell, line)


def test_data_limit_0_shows_every_document(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # It said "tasks: no documents" for a table holding some (0 means all, as max_rows does).
    magics_app(shell).run(lambda ctx: [ctx.db.insert("tasks", {"text": t}) for t in "abc"])
    assert len(run(shell, "%convex data tasks --limit 0 -o docs") or shell.user_ns["docs"]) == 3
    assert len(run(shell, "%convex data tasks --limit 0 --df")) == 3


# -- LiveQuery ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_rows": "x"}, "max_rows= takes a whole number (0: all) or None, got 'x'"),
        ({"columns": "name"}, "columns= takes a list of field names, got 'name'"),
        ({"columns": ["name", 1]}, "columns= takes a list of field names, got ['name', 1]"),
    ],
)
def test_a_live_view_with_a_bad_option_keeps_no_subscription(
    recording_comm: Any, bridge: Any, app: Any, options: dict, message: str
) -> None:
    # max_rows="x" failed after subscribing: the subscription stayed, and every later commit
    # printed the bridge's traceback of the half-made widget.
    @app.query
    def items(ctx: Any) -> Any:
        return ctx.db.query("items").collect()

    with pytest.raises(cn.InvalidValueError) as info:
        app.live("items", **options)
    assert str(info.value) == message
    assert app.subscription_count == 0
    app.run(lambda ctx: ctx.db.insert("items", {"name": "a"}))
    app.wait_for_callbacks()
    assert bridge.flush() == 0


def test_a_live_view_with_arguments_that_are_not_a_dict(recording_comm: Any, bridge: Any, app: Any) -> None:
    # dict([1]) failed first: "cannot convert dictionary update sequence element #0 to a sequence".
    @app.query
    def items(ctx: Any, n: float = 1) -> Any:
        return []

    with pytest.raises(cn.ValidationError, match="must be a dict of named arguments, got list"):
        app.live("items", [1])
    assert app.subscription_count == 0


def test_a_schema_cell_with_a_syntax_error_names_the_magic(shell: Any) -> None:
    from IPython.core.error import UsageError

    # It said "<convex_schema>: syntax error ...", the other cell magics "%%convex_module: ...".
    with pytest.raises(UsageError, match=r"^%%convex_schema: syntax error on line 2: '\(' was never closed$"):
        run(shell, "%%convex_schema\nx = 1\ndefine_table(\n")
