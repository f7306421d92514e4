"""The magics, driven through an IPython shell (what a notebook cell does)."""

from __future__ import annotations

import os
from typing import Any

import pytest

import convex_notebook as cn
from convex_notebook.notebook.display import QueryResult
from convex_notebook.notebook.magics import ConvexMagics, current_magics
from convex_notebook.notebook.widgets import LiveQuery

TASKS_MODULE = '''
@query
def list(ctx, done=None):
    tasks = ctx.db.query("tasks").collect()
    return [t for t in tasks if done is None or t["done"] == done]

@mutation(args={"text": v.string()})
def add(ctx, text):
    print("adding", text)
    return ctx.db.insert("tasks", {"text": text, "done": False})

@internal_mutation
def purge(ctx):
    for t in ctx.db.query("tasks").collect():
        ctx.db.delete(t["_id"])
'''


def run(shell: Any, source: str, **kwargs: Any) -> Any:
    """Run a cell; raise what it raised (UsageError included)."""
    result = shell.run_cell(source, **kwargs)
    if result.error_before_exec is not None:
        raise result.error_before_exec
    if result.error_in_exec is not None:
        raise result.error_in_exec
    return result.result


def out(shell: Any, capsys: pytest.CaptureFixture[str], source: str) -> str:
    capsys.readouterr()
    run(shell, source)
    return capsys.readouterr().out


@pytest.fixture
def tasks(shell: Any) -> Any:
    run(shell, "%%convex_module tasks\n" + TASKS_MODULE)
    return current_magics(shell).app


def test_load_ext_registers_the_magics(shell: Any) -> None:
    assert "convex" in shell.magics_manager.magics["line"]
    for name in ("convex_schema", "convex_module", "convex_query"):
        assert name in shell.magics_manager.magics["cell"]
    from IPython.core.interactiveshell import InteractiveShell

    fresh = InteractiveShell.instance()
    assert fresh is shell  # the same singleton: %load_ext path checked through the package entry point
    import convex_notebook

    assert callable(convex_notebook.load_ipython_extension)


def test_overview_and_every_subcommand_has_help(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    text = out(shell, capsys, "%convex")
    for sub in ("connect", "status", "tables", "functions", "run", "live", "data", "import", "export", "logs", "env", "reset"):
        assert f"  {sub} " in text
        helptext = out(shell, capsys, f"%convex {sub} --help")
        assert helptext.startswith(f"usage: %convex {sub}")
    for cell_magic in ("convex_schema", "convex_module", "convex_query"):
        assert out(shell, capsys, f"%%{cell_magic} --help\npass\n").startswith(f"usage: %%{cell_magic}")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("%convex rn x", "unknown subcommand 'rn'. Did you mean %convex run?"),
        ("%convex run", "%convex run: the following arguments are required: NAME"),
        ("%convex run tasks:add --bogus", "unrecognized arguments: --bogus"),
        ("%convex run tasks:add {\"text\": ", "JSON object is not closed"),
        ("%convex run tasks:add {\"text\" 1}", "not a JSON object"),
        ("%convex run tasks:add text", "pass arguments as a JSON object or key=value pairs"),
        ("%convex data tasks --order sideways", "invalid choice: 'sideways'"),
        ("%convex run tasks:add -o 1x text=a", "-o needs a Python variable name"),
        ("%convex connect not-a-url", "neither a URL"),
    ],
)
def test_usage_errors_are_one_line(shell: Any, tasks: Any, line: str, message: str) -> None:
    from IPython.core.error import UsageError

    with pytest.raises(UsageError) as info:
        run(shell, line)
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_first_command_connects_to_memory(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    text = out(shell, capsys, "%convex status")
    assert text.startswith("Connected to memory:// (use %convex connect to change)\n")
    assert "tables:             0" in text
    assert isinstance(current_magics(shell).app, cn.Backend)


def test_connect_to_a_variable_and_a_file(shell: Any, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    run(shell, "import convex_notebook as cn\nmine = cn.Backend()")
    assert out(shell, capsys, "%convex connect mine") == "Connected to mine (memory://)\n"
    assert current_magics(shell).app is shell.user_ns["mine"]
    path = tmp_path / "app.sqlite3"
    assert out(shell, capsys, f"%convex connect {path} -o db") == f"Connected to sqlite:///{path}\n"
    db = shell.user_ns["db"]
    assert isinstance(db, cn.Backend) and db.path == str(path)
    assert out(shell, capsys, "%convex connect") == f"Connected to sqlite:///{path}\n"
    with pytest.raises(Exception, match="not a Backend"):
        run(shell, "x = 3\n%convex connect x")


def test_module_deploys_and_run_calls(shell: Any, tasks: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert [f.path for f in tasks.functions()] == ["tasks:add", "tasks:list", "tasks:purge"]
    result = run(shell, '%convex run tasks:add {"text": "hello"}')
    assert isinstance(result, QueryResult) and isinstance(result.value, str)
    run(shell, "%convex run tasks:add text=world -o second")
    assert shell.user_ns["second"] == tasks.query("tasks:list")[1]["_id"]
    listing = run(shell, "%convex run tasks:list done=false")
    assert [t["text"] for t in listing.value] == ["hello", "world"]
    assert "hello" in repr(listing) and "(showing 2 of 2 rows)" in repr(listing)
    assert "<table" in listing._repr_html_()
    run(shell, "%convex run tasks:purge")  # internal functions run too (admin)
    assert tasks.query("tasks:list") == []


def test_module_output_and_redeploy(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    text = out(shell, capsys, "%%convex_module tasks\n" + TASKS_MODULE)
    assert text.endswith("Deployed tasks: add (mutation), list (query), purge (mutation)\n")
    app = current_magics(shell).app
    run(shell, "%convex run tasks:add text=a")
    lq = run(shell, "%convex live tasks:list -o lq")
    assert lq._total == 1
    # Re-running the cell with a changed query redeploys it and re-runs the live query;
    # functions the cell no longer defines are removed.
    text = out(shell, capsys, "%%convex_module tasks\n@query\ndef list(ctx):\n    return [{'text': 'replaced'}]\n")
    assert text == "Deployed tasks: list (query); removed tasks:add, tasks:purge; re-ran 1 live query\n"
    assert [f.path for f in app.functions()] == ["tasks:list"]
    assert lq.value == [{"text": "replaced"}]
    lq.wait_for(lambda value: True)
    assert lq.rendered_rows() == [["replaced"]]


def test_module_cell_sees_notebook_names_and_app(shell: Any) -> None:
    run(shell, "LIMIT = 2")
    run(shell, "%%convex_module notes\n@app.query\ndef first(ctx):\n    return ctx.db.query('notes').take(LIMIT)\n"
               "@mutation\ndef add(ctx, text):\n    return ctx.db.insert('notes', {'text': text})\n")
    app = current_magics(shell).app
    for t in "abc":
        app.mutation("notes:add", {"text": t})
    assert [n["text"] for n in app.query("notes:first")] == ["a", "b"]


def test_module_errors(shell: Any) -> None:
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="syntax error on line 1"):
        run(shell, "%%convex_module m\ndef (:\n")
    with pytest.raises(UsageError, match="module name"):
        run(shell, "%%convex_module a:b\npass\n")
    with pytest.raises(UsageError, match="required: NAME"):
        run(shell, "%%convex_module\npass\n")


def test_schema_cell(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    text = out(shell, capsys, '%%convex_schema\n{"tasks": define_table({"text": v.string(), "done": v.boolean()})'
                              '.index("by_done", ["done"]), "lists": define_table({"name": v.string()})}\n')
    assert text == "Connected to memory:// (use %convex connect to change)\nSchema applied: 2 tables: lists; tasks (by_done)\n"
    app = current_magics(shell).app
    assert sorted(app.schema.tables) == ["lists", "tasks"]
    run(shell, "%%convex_schema -o s\ncn.define_schema({'tasks': define_table({'text': v.string()})}, schema_validation=True)")
    assert isinstance(shell.user_ns["s"], cn.SchemaDefinition)
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="end the cell with the schema"):
        run(shell, "%%convex_schema\nx = 1\n")


def test_schema_violations_are_short_errors(shell: Any) -> None:
    app_cell = '%%convex_schema\n{"tasks": define_table({"text": v.string()})}\n'
    run(shell, app_cell)
    app = current_magics(shell).app
    app.run(lambda ctx: ctx.db.insert("tasks", {"text": "ok"}))
    with pytest.raises(cn.SchemaError, match="tasks"):
        run(shell, '%%convex_schema\n{"tasks": define_table({"text": v.number()})}\n')
    assert shell.tracebacks[-1][0].startswith("SchemaError: ")
    assert len(shell.tracebacks[-1]) == 1


def test_function_errors_are_one_line(shell: Any, tasks: Any) -> None:
    with pytest.raises(cn.ValidationError):
        run(shell, '%convex run tasks:add {"text": 42}')
    (line,) = shell.tracebacks[-1]
    assert line.startswith("ValidationError: ArgumentValidationError for tasks:add")
    assert "(full traceback: %tb)" in line
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="Did you mean tasks:add"):
        run(shell, "%convex run tasks:ad")
    with pytest.raises(UsageError, match=r"Could not find function for 'nosuch:fn'. Functions: tasks:add, tasks:list, tasks:purge"):
        run(shell, "%convex run nosuch:fn")
    # errors raised outside the magics: the error, then the user's own frames only
    with pytest.raises(cn.ValidationError):
        run(shell, "app = _convex_app\napp.mutation('tasks:add', {'text': 1})".replace("_convex_app", "get_ipython().find_magic('convex').__self__.app"))
    shown = shell.tracebacks[-1]
    assert shown[0].startswith("ValidationError: ArgumentValidationError for tasks:add")
    assert len(shown) == 3 and "line 2:" in shown[1] and shown[1].endswith("app.mutation('tasks:add', {'text': 1})")
    assert "%convex debug on" in shown[2]
    # and short_errors=False brings the full traceback back for magics too
    run(shell, "%config ConvexMagics.short_errors = False")
    with pytest.raises(cn.ValidationError):
        run(shell, '%convex run tasks:add {"text": 42}')
    assert len(shell.tracebacks[-1]) > 1


def test_convex_errors_show_their_data(shell: Any) -> None:
    run(shell, "%%convex_module m\n@mutation\ndef fail(ctx):\n    raise cn.ConvexError({'code': 'nope'})\n")
    with pytest.raises(cn.ConvexError):
        run(shell, "%convex run m:fail")
    assert shell.tracebacks[-1][0].startswith('ConvexError: {"code": "nope"}')


def test_tables_functions_status(shell: Any, tasks: Any, capsys: pytest.CaptureFixture[str]) -> None:
    for text in ("a", "b"):
        tasks.mutation("tasks:add", {"text": text})
    tables = run(shell, "%convex tables")
    assert tables.value == [{"table": "tasks", "documents": 2}]
    run(shell, "%convex tables -o counts")
    assert shell.user_ns["counts"] == {"tasks": 2}
    functions = run(shell, "%convex functions")
    assert functions.value == [
        {"function": "tasks:add", "kind": "mutation", "visibility": "public", "args": "text: v.string()"},
        {"function": "tasks:list", "kind": "query", "visibility": "public", "args": "(unvalidated)"},
        {"function": "tasks:purge", "kind": "mutation", "visibility": "internal", "args": "(unvalidated)"},
    ]
    text = out(shell, capsys, "%convex status")
    assert text == (
        "deployment:         memory://\ntables:             1\ndocuments:          2\nfunctions:          3\n"
        "by kind:            2 mutations, 1 query\nlive subscriptions: 0\n"
    )
    run(shell, "%convex status -o info")
    assert shell.user_ns["info"]["documents"] == 2
    run(shell, "%%convex_module more\n@query\ndef one(ctx):\n    return 1\n")
    assert "by kind:            2 mutations, 2 queries\n" in out(shell, capsys, "%convex status")  # not "querys"


def test_data(shell: Any, tasks: Any, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(30):
        tasks.mutation("tasks:add", {"text": f"t{i}"})
    text = out(shell, capsys, "%convex data tasks --limit 5")
    assert text.splitlines()[0] == "tasks: the 5 newest of 30 documents"
    shown = run(shell, "%convex data tasks --limit 5")
    assert [d["text"] for d in shown.value] == ["t29", "t28", "t27", "t26", "t25"]
    run(shell, "%convex data tasks --order asc --limit 2 -o docs")
    assert [d["text"] for d in shell.user_ns["docs"]] == ["t0", "t1"]
    run(shell, "%convex data tasks --df --limit 3 -o frame")
    assert list(shell.user_ns["frame"]["text"]) == ["t29", "t28", "t27"]
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="no table named 'nothing'. Tables: tasks"):
        run(shell, "%convex data nothing")
    assert run(shell, "%convex data").value == [{"table": "tasks", "documents": 30}]


def test_live_magic(shell: Any, tasks: Any) -> None:
    widget = run(shell, "%convex live tasks:list done=false --max-rows 3 -o todo")
    assert isinstance(widget, LiveQuery) and shell.user_ns["todo"] is widget
    assert repr(widget) == "LiveQuery('tasks:list', {'done': False}, rows=0, status='live')"
    for i in range(5):
        tasks.mutation("tasks:add", {"text": f"t{i}"})
    widget.wait_for(lambda rows: len(rows) == 5)
    assert widget._total == 5 and len(widget.rendered_rows()) == 3


def test_logs(shell: Any, tasks: Any, capsys: pytest.CaptureFixture[str]) -> None:
    tasks.mutation("tasks:add", {"text": "x"})

    @tasks.mutation
    def fail(ctx: Any) -> None:
        raise cn.ConvexError("no")

    with pytest.raises(cn.ConvexError):
        tasks.mutation("fail")
    logs = run(shell, "%convex logs")
    assert [(r["function"], r["outcome"].split(":")[0], r["lines"]) for r in logs.value] == [
        ("tasks:add", "ok", "[LOG] adding x"),
        ("fail", "error", ""),
    ]
    assert len(run(shell, "%convex logs --errors").value) == 1
    assert len(run(shell, "%convex logs -n 1").value) == 1
    assert out(shell, capsys, "%convex logs --function tasks:list") == "No log entries\n"
    run(shell, "%convex logs -o entries")
    assert shell.user_ns["entries"][0].lines == ["[LOG] adding x"]
    # Each call's usage: what it read and wrote (API.md §7).
    assert logs.value[0]["usage"].startswith("wrote 1 (") and logs.value[1]["usage"] == ""
    assert shell.user_ns["entries"][0].usage["documents_written"] == 1


def test_data_at_an_earlier_time(shell: Any, tasks: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from IPython.core.error import UsageError

    tasks.mutation("tasks:add", {"text": "kept"})
    before = tasks.latest_ts()
    tasks.mutation("tasks:add", {"text": "later"})
    shown = run(shell, f"%convex data tasks --at {before}")
    assert [d["text"] for d in shown.value] == ["kept"]
    run(shell, f"%convex data tasks --at {before} --df -o frame")
    assert list(shell.user_ns["frame"]["text"]) == ["kept"]
    assert [d["text"] for d in run(shell, "%convex data tasks --at 0s").value] == ["later", "kept"]
    with pytest.raises(UsageError, match="older than the history kept"):
        run(shell, "%convex data tasks --at 3d")
    with pytest.raises(UsageError, match="give a time ago"):
        run(shell, "%convex data tasks --at yesterday")


def test_reset(shell: Any, tasks: Any, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(3):
        tasks.mutation("tasks:add", {"text": f"t{i}"})
    widget = run(shell, "%convex live tasks:list")
    assert out(shell, capsys, "%convex reset") == "Deleted 3 documents; closed 1 live table\n"
    assert widget.closed and tasks.count("tasks") == 0
    assert [f.path for f in tasks.functions()] == ["tasks:add", "tasks:list", "tasks:purge"]
    # a persisted database needs --yes
    from IPython.core.error import UsageError

    run(shell, f"%convex connect {tmp_path / 'db.sqlite3'}")
    with pytest.raises(UsageError, match="add --yes to confirm"):
        run(shell, "%convex reset")
    assert out(shell, capsys, "%convex reset --yes") == "Deleted 0 documents; closed 0 live tables\n"


def test_convex_query_cell(shell: Any, tasks: Any) -> None:
    for text in ("b", "a"):
        tasks.mutation("tasks:add", {"text": text})
    result = run(shell, '%%convex_query\ntexts = [t["text"] for t in ctx.db.query("tasks").collect()]\nsorted(texts)\n')
    assert isinstance(result, QueryResult) and result.value == ["a", "b"]
    assert repr(result) == "value\n-----\na\nb\n(showing 2 of 2 rows)"
    run(shell, '%%convex_query -o n\nreturn len(ctx.db.query("tasks").collect())\n')
    assert shell.user_ns["n"] == 2
    # ad-hoc queries never show up as functions, and one-shot ones are gone afterwards
    assert [f.path for f in tasks.functions()] == ["tasks:add", "tasks:list", "tasks:purge"]
    assert not [p for p in tasks.registry._functions if p.startswith("_adhoc:")]


def test_convex_query_live(shell: Any, tasks: Any) -> None:
    widget = run(shell, '%%convex_query --live\nlen(ctx.db.query("tasks").collect())\n', cell_id="q1")
    assert isinstance(widget, LiveQuery) and widget.value == 0
    tasks.mutation("tasks:add", {"text": "x"})
    assert widget.wait_for(lambda n: n == 1) == 1
    assert widget._scalar == "1"
    # re-running the cell replaces the widget and unregisters the old ad-hoc query
    second = run(shell, '%%convex_query --live\nlen(ctx.db.query("tasks").collect()) * 10\n', cell_id="q1")
    assert widget.closed and second.value == 10
    adhoc = [p for p in tasks.registry._functions if p.startswith("_adhoc:")]
    assert adhoc == [second.name]
    second.close()
    assert not [p for p in tasks.registry._functions if p.startswith("_adhoc:")]


def test_convex_query_errors(shell: Any, tasks: Any) -> None:
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="the cell is empty"):
        run(shell, "%%convex_query\n\n")
    with pytest.raises(cn.ConvexFunctionError, match="ZeroDivisionError"):
        run(shell, "%%convex_query\n1 / 0\n")
    assert shell.tracebacks[-1][0].startswith("ConvexFunctionError: Uncaught ZeroDivisionError")


def test_config_options(shell: Any, tasks: Any) -> None:
    magics = current_magics(shell)
    assert isinstance(magics, ConvexMagics) and magics in shell.configurables
    run(shell, "%config ConvexMagics.max_rows = 2")
    run(shell, "%config ConvexMagics.show_system_fields = False")
    for i in range(4):
        tasks.mutation("tasks:add", {"text": f"t{i}"})
    result = run(shell, "%convex run tasks:list")
    assert repr(result) == "text  done\n----  -----\nt0    false\nt1    false\n(showing 2 of 4 rows)"
    widget = run(shell, "%convex live tasks:list")
    assert widget.rendered_columns == ["text", "done"] and len(widget.rendered_rows()) == 2
    from convex_notebook.notebook.bridge import get_bridge

    run(shell, "%config ConvexMagics.throttle_hz = 5.0")
    assert get_bridge().throttle_hz == 5.0
    from traitlets import TraitError

    with pytest.raises(TraitError):
        magics.max_rows = "many"  # type: ignore[assignment]


def test_json_and_pairs_mix(shell: Any) -> None:
    run(shell, "%%convex_module echo\n@query\ndef back(ctx, **kw):\n    return kw\n")
    result = run(shell, '%convex run echo:back {"a": {"nested": [1, "x}"]}} b=2 c=hi d=null -o r')
    assert result is None
    assert shell.user_ns["r"] == {"a": {"nested": [1, "x}"]}, "b": 2, "c": "hi", "d": None}


def test_import_and_export(shell: Any, tasks: Any, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import pandas as pd

    shell.user_ns["frame"] = pd.DataFrame({"text": ["a", "b", "c"], "done": [False, True, False]})
    assert out(shell, capsys, "%convex import tasks frame") == "tasks: 3 documents\n"
    assert [t["text"] for t in tasks.query("tasks:list")] == ["a", "b", "c"]
    with pytest.raises(Exception, match="tasks"):  # insert mode wants an empty table
        run(shell, "%convex import tasks frame")
    assert out(shell, capsys, "%convex import tasks frame --mode append") == "tasks: 6 documents (+3)\n"
    shell.user_ns["rows"] = [{"text": "only", "done": True}]
    assert out(shell, capsys, "%convex import tasks rows --mode replace") == "tasks: 1 document\n"
    # files, both ways
    path = tmp_path / "tasks.jsonl"
    assert out(shell, capsys, f"%convex export tasks {path}") == f"Wrote tasks to {path}\n"
    assert out(shell, capsys, f"%convex import copy {path}") == "copy: 1 document\n"
    csv = tmp_path / "more.csv"
    csv.write_text("text,done\nx,false\ny,true\n")
    assert out(shell, capsys, f"%convex import more {csv}") == "more: 2 documents\n"
    # a table as a DataFrame
    run(shell, "%convex export tasks -o exported")
    assert list(shell.user_ns["exported"]["text"]) == ["only"]
    # snapshots
    snap = tmp_path / "snap.zip"
    assert out(shell, capsys, f"%convex export --snapshot {snap}") == f"Wrote snapshot {snap}\n"
    run(shell, "%convex connect memory://")
    assert out(shell, capsys, f"%convex import --snapshot {snap}") == f"Imported {snap}: copy (1), more (2), tasks (1)\n"
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="neither a variable nor an existing file"):
        run(shell, "%convex import t no_such_thing")
    with pytest.raises(UsageError, match="give TABLE and SOURCE"):
        run(shell, "%convex import t")
    with pytest.raises(UsageError, match="give a TABLE"):
        run(shell, "%convex export")


def test_magics_on_a_remote_deployment(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    app = cn.Backend(echo_logs=False)

    @app.query
    def notes(ctx: Any) -> Any:
        return ctx.db.query("notes").collect()

    @app.mutation
    def add(ctx: Any, text: str) -> Any:
        return ctx.db.insert("notes", {"text": text})

    server = app.serve(port=0, block=False, print_admin_key=False)
    try:
        assert out(shell, capsys, f"%convex connect {server.url} -o remote") == f"Connected to {server.url}\n"
        run(shell, "%convex run add text=hello")
        widget = run(shell, "%convex live notes")
        assert isinstance(widget, LiveQuery) and widget._total == 1
        app.mutation("add", {"text": "from the embedded side"})  # another client's write
        widget.wait_for(lambda rows: len(rows) == 2, timeout=30)
        assert [r[1] for r in widget.rendered_rows()] == ["hello", "from the embedded side"]
        with pytest.raises(PermissionError, match="admin key"):  # a push to the server needs its key
            run(shell, "%%convex_module m\n@query\ndef f(ctx):\n    return 1\n")
        from IPython.core.error import UsageError

        with pytest.raises(UsageError, match="convex-notebook dev"):  # a folder deploys where it runs  # a folder deploys where it runs
            run(shell, f"%convex deploy {os.path.dirname(__file__)}")
        widget.close()
        shell.user_ns["remote"].close()
    finally:
        server.stop()
        app.close()


FAILING = """
import convex_notebook as cn
app = cn.Backend(echo_logs=False)

@app.query
def boom(ctx, n):
    return helper(n)

def helper(n):
    return 1 / n
"""


def test_a_functions_error_shows_the_users_frames_only(shell: Any) -> None:
    run(shell, FAILING)
    with pytest.raises(cn.ConvexFunctionError):
        run(shell, 'app.query("boom", {"n": 0})')
    shown = shell.tracebacks[-1]
    assert shown[0] == "ConvexFunctionError: Uncaught ZeroDivisionError in query boom: float division by zero"
    frames = shown[1:-1]
    assert [f.split(":", 1)[1].strip() for f in frames] == ['app.query("boom", {"n": 0})', "return helper(n)", "return 1 / n"]
    assert ", in boom:" in frames[1] and ", in helper:" in frames[2]
    assert not any("convex_notebook" in line for line in shown)  # no library frames
    # full detail on demand
    run(shell, "%convex debug on")
    with pytest.raises(cn.ConvexFunctionError):
        run(shell, 'app.query("boom", {"n": 0})')
    assert any("convex_notebook/backend" in line for line in shell.tracebacks[-1])
    run(shell, "import convex_notebook as cn\ncn.show_full_tracebacks(False)")
    with pytest.raises(cn.ConvexFunctionError):
        run(shell, 'app.query("boom", {"n": 0})')
    assert len(shell.tracebacks[-1]) == 5


def test_magic_mistakes_are_one_line(shell: Any, tasks: Any, tmp_path: Any) -> None:
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match=r"^%%convex_schema, line 2: AttributeError: v has no validator 'strng': did you mean v.string\(\)\?"):
        run(shell, '%%convex_schema\nx = 1\n{"tasks": define_table({"text": v.strng()})}\n')
    with pytest.raises(UsageError, match=r"^%%convex_module, line 4: NameError: name 'undefined_thing' is not defined"):
        run(shell, "%%convex_module broken\n@query\ndef f(ctx):\n    return 1\nundefined_thing\n")
    with pytest.raises(UsageError, match=r"no table named 'taks'. Did you mean tasks\? Tables: tasks"):
        tasks.mutation("tasks:add", {"text": "a"})
        run(shell, "%convex data taks")
    missing = tmp_path / "nofolder" / "tasks.csv"
    with pytest.raises(UsageError, match=r"^%convex export: the folder .*nofolder/ does not exist"):
        run(shell, f"%convex export tasks {missing}")
    assert not missing.parent.exists()


def test_deploy_a_functions_folder(shell: Any, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from IPython.core.error import UsageError

    convex = tmp_path / "convex"
    convex.mkdir()
    (convex / "schema.py").write_text("schema = cn.define_schema({'notes': cn.define_table({'text': v.string()})})\n")
    (convex / "notes.py").write_text(
        "import convex_notebook as cn\n\n@cn.query\ndef count(ctx):\n    return len(ctx.db.query('notes').collect())\n")
    run(shell, "%convex connect memory://")
    assert out(shell, capsys, f"%convex deploy {convex}") == "Deployed schema: 1 table; notes: count\n"
    app = current_magics(shell).app
    live = app.subscribe("notes:count", {})
    (convex / "notes.py").write_text("@app.query\ndef count(ctx):\n    return -1\n")
    assert out(shell, capsys, f"%convex deploy {convex}") == "Deployed notes: count; re-ran 1 live query\n"
    assert live.value == -1
    assert out(shell, capsys, f"%convex deploy {convex}") == f"{convex}: nothing changed since the last deploy\n"
    (convex / "notes.py").write_text("@app.query\ndef count(ctx)\n    return 0\n")
    with pytest.raises(UsageError, match=r"^%convex deploy: .*notes.py, line 2: SyntaxError"):
        run(shell, f"%convex deploy {convex}")
    assert app.query("notes:count") == -1  # the previous deployment stays
    with pytest.raises(UsageError, match="nothing at"):
        run(shell, f"%convex deploy {tmp_path / 'nope'}")


def test_connect_mistakes_are_one_line(shell: Any, tmp_path: Any) -> None:
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match=r"^%convex connect: the folder .*nope does not exist"):
        run(shell, f"%convex connect sqlite:///{tmp_path}/nope/app.sqlite3")
    not_a_db = tmp_path / "notes.sqlite3"
    not_a_db.write_text("not a database\n" * 100)
    with pytest.raises(UsageError, match=r"^%convex connect: cannot open .*file is not a database"):
        run(shell, f"%convex connect sqlite:///{not_a_db}")
    with pytest.raises(UsageError, match=r"Could not find public function for 'nosuch:fn'"):
        run(shell, "%convex live nosuch:fn")


def test_env_subcommand(shell: Any, tasks: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert out(shell, capsys, "%convex env") == "No environment variables set\n"
    assert out(shell, capsys, "%convex env set API_KEY sk-123") == "Set API_KEY\n"
    run(shell, "%convex env set MODE=fast")
    assert tasks.env.to_dict() == {"API_KEY": "sk-123", "MODE": "fast"}
    assert out(shell, capsys, "%convex env list") == "API_KEY=********\nMODE=********\n"  # hidden by default
    assert out(shell, capsys, "%convex env list --values") == "API_KEY=sk-123\nMODE=fast\n"
    assert run(shell, "%convex env get MODE") == "fast"
    run(shell, "%convex env list -o variables")
    assert shell.user_ns["variables"] == {"API_KEY": "sk-123", "MODE": "fast"}
    run(shell, "%convex env remove MODE")
    assert "MODE" not in tasks.env
    with pytest.raises(Exception, match="not found"):
        run(shell, "%convex env get MODE")
    with pytest.raises(Exception, match="usage"):
        run(shell, "%convex env set ONLY")
    with pytest.raises(Exception, match="must start with a letter"):
        run(shell, "%convex env set 1X y")
    assert tasks.env.to_dict() == {"API_KEY": "sk-123"}
