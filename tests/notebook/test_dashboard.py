"""cn.Dashboard: state as the front end receives it, and browser messages handled in Python."""

from __future__ import annotations

import json
from typing import Any

import convex_notebook as cn
from convex_notebook import v
from convex_notebook.notebook.dashboard import ArgumentError, parse_form_args


def make_app() -> Any:
    app = cn.Backend(echo_logs=False)

    @app.query
    def list_notes(ctx: Any) -> Any:
        return ctx.db.query("notes").collect()

    @app.mutation(args={"text": v.string(), "stars": v.optional(v.number()), "pinned": v.boolean(),
                        "count": v.optional(v.int64()), "tags": v.optional(v.array(v.string()))})
    def add(ctx: Any, text: str, pinned: bool, stars: float | None = None, count: Any = None, tags: Any = None) -> Any:
        print("adding", text)
        doc = {"text": text, "pinned": pinned}
        if stars is not None:
            doc["stars"] = stars
        if tags is not None:
            doc["tags"] = tags
        return ctx.db.insert("notes", doc)

    @app.internal_mutation
    def wipe(ctx: Any) -> None:
        for n in ctx.db.query("notes").collect():
            ctx.db.delete(n["_id"])

    return app


def browser_message(d: Any, content: dict) -> None:
    """What a click in the browser does: a custom comm message."""
    d.comm.handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


def test_tables_functions_and_repr(recording_comm: Any, bridge: Any) -> None:
    app = make_app()
    for i in range(3):
        app.mutation("add", {"text": f"n{i}", "pinned": False})
    d = cn.Dashboard(app)
    assert repr(d) == "Dashboard(memory://: 1 table, 3 functions)"
    assert d._tables == [{"name": "notes", "count": 3}]
    assert [(f["path"], f["kind"], f["visibility"], f["validated"]) for f in d._functions] == [
        ("add", "mutation", "public", True),
        ("list_notes", "query", "public", False),
        ("wipe", "mutation", "internal", False),
    ]
    fields = {f["name"]: (f["kind"], f["optional"]) for f in d._functions[0]["fields"]}
    assert fields == {"text": ("string", False), "stars": ("float64", True), "pinned": ("boolean", False),
                      "count": ("int64", True), "tags": ("array", True)}
    assert d._browser["table"] == "notes" and d._browser["total"] == 3
    assert "export default" in d._esm and "import " not in d._esm
    app.close()


def test_paging_newest_first(recording_comm: Any, bridge: Any) -> None:
    app = make_app()
    for i in range(45):
        app.mutation("add", {"text": f"n{i:02d}", "pinned": False})
    d = cn.Dashboard(app, page_size=20)
    page = d._browser
    assert (page["first"], page["last"], page["has_prev"], page["has_next"]) == (1, 20, False, True)
    text_col = page["columns"].index("text")
    assert page["rows"][0]["cells"][text_col] == "n44"
    browser_message(d, {"type": "page", "direction": "next"})
    browser_message(d, {"type": "page", "direction": "next"})
    page = d._browser
    assert (page["first"], page["last"], page["has_next"]) == (41, 45, False)
    assert page["rows"][-1]["cells"][text_col] == "n00"
    browser_message(d, {"type": "page", "direction": "next"})  # nothing beyond the end
    assert d._browser["first"] == 41
    browser_message(d, {"type": "page", "direction": "prev"})
    assert d._browser["first"] == 21
    browser_message(d, {"type": "page", "direction": "first"})
    assert d._browser["first"] == 1
    app.close()


def test_select_table(recording_comm: Any, bridge: Any) -> None:
    app = make_app()
    app.run(lambda ctx: ctx.db.insert("authors", {"name": "Ada"}))
    app.mutation("add", {"text": "x", "pinned": True})
    d = cn.Dashboard(app)
    assert [t["name"] for t in d._tables] == ["authors", "notes"]
    browser_message(d, {"type": "select_table", "table": "notes"})
    assert d._browser["table"] == "notes" and d._browser["total"] == 1
    browser_message(d, {"type": "select_table", "table": "missing"})
    assert d._browser["first"] == 0 and d._browser["rows"] == []
    app.close()


def test_function_runner(recording_comm: Any, bridge: Any) -> None:
    app = make_app()
    d = cn.Dashboard(app)
    browser_message(d, {"type": "run", "path": "add",
                        "form": {"text": "hello", "stars": "4.5", "pinned": True, "count": "", "tags": '["a"]'}})
    result = d._result
    assert result["ok"] and result["lines"] == ["[LOG] adding hello"]
    assert app.query("list_notes")[0]["stars"] == 4.5
    assert d._tables == [{"name": "notes", "count": 1}]  # the rest of the dashboard follows
    # validation happens in the backend: the error names the field
    browser_message(d, {"type": "run", "path": "add", "form": {"text": "x", "pinned": True, "tags": '[1]'}})
    assert not d._result["ok"] and "ValidationError" in d._result["error"] and ".tags" in d._result["error"]
    # form parsing errors are reported too
    browser_message(d, {"type": "run", "path": "add", "form": {"text": "x", "pinned": True, "stars": "lots"}})
    assert d._result["error"].startswith("ArgumentError: stars: expected v.number()")
    # unvalidated functions take one JSON object; internal ones run (admin)
    browser_message(d, {"type": "run", "path": "list_notes", "form": {"__json__": ""}})
    assert d._result["ok"] and '"hello"' in d._result["text"]
    browser_message(d, {"type": "run", "path": "wipe", "form": {"__json__": "{}"}})
    assert d._result["ok"] and app.count("notes") == 0
    browser_message(d, {"type": "run", "path": "list_notes", "form": {"__json__": "[1]"}})
    assert "a JSON object" in d._result["error"]
    app.close()


def test_logs_panel(recording_comm: Any, bridge: Any) -> None:
    app = make_app()
    d = cn.Dashboard(app, log_limit=2)
    for i in range(3):
        app.mutation("add", {"text": f"n{i}", "pinned": False})
    bridge.flush()
    assert [entry["lines"] for entry in d._logs] == ["[LOG] adding n2", "[LOG] adding n1"]  # newest first
    assert all(entry["ok"] for entry in d._logs)
    assert d._has_scheduler is False or isinstance(d._scheduled, list)
    app.close()


def test_follows_commits_through_the_bridge(recording_comm: Any, bridge: Any) -> None:
    app = make_app()
    d = cn.Dashboard(app)
    sent = len(d.comm.updates())
    app.mutation("add", {"text": "a", "pinned": False})
    app.run(lambda ctx: ctx.db.insert("other", {}))
    assert len(d.comm.updates()) == sent  # nothing until the bridge flushes (on the kernel loop)
    bridge.flush()
    assert len(d.comm.updates()) == sent + 1
    assert d._tables == [{"name": "notes", "count": 1}, {"name": "other", "count": 1}]
    d.close()
    app.mutation("add", {"text": "b", "pinned": False})
    assert bridge.pending == 0  # a closed dashboard stops listening
    assert "add" not in app.logs.__dict__  # and unhooked the log book
    app.close()


def test_parse_form_args() -> None:
    fields = [
        {"name": "s", "type": "v.string()", "kind": "string", "optional": False},
        {"name": "n", "type": "v.number()", "kind": "float64", "optional": True},
        {"name": "i", "type": "v.int64()", "kind": "int64", "optional": False},
        {"name": "b", "type": "v.boolean()", "kind": "boolean", "optional": False},
        {"name": "o", "type": "v.object({})", "kind": "object", "optional": True},
    ]
    fields.append({"name": "t", "type": "v.string()", "kind": "string", "optional": True})
    args = parse_form_args(fields, {"s": "", "n": "", "i": "7n", "b": False, "o": '{"k": 1}', "t": ""})
    assert args == {"s": "", "i": cn.Int64(7), "b": False, "o": {"k": 1}}
    assert isinstance(args["i"], cn.Int64)
    import pytest

    with pytest.raises(ArgumentError, match="i: required"):
        parse_form_args(fields, {"s": "x", "i": "", "b": True})
    with pytest.raises(ArgumentError, match="o: expected"):
        parse_form_args(fields, {"s": "x", "i": "1", "b": True, "o": "{nope"})


def test_schedules_panel_follows_the_scheduler(recording_comm: Any, bridge: Any) -> None:
    app = cn.Backend(clock=cn.VirtualClock(), echo_logs=False)

    @app.mutation
    def later(ctx: Any) -> str:
        return ctx.scheduler.run_after(60_000, "add", {"text": "from the scheduler", "pinned": False})

    @app.mutation(args={"text": v.string(), "pinned": v.boolean()})
    def add(ctx: Any, text: str, pinned: bool) -> Any:
        return ctx.db.insert("notes", {"text": text, "pinned": pinned})

    d = cn.Dashboard(app)
    assert d._has_scheduler is True and d._scheduled == []
    job = app.mutation("later")
    bridge.flush()  # the commit repaints the dashboard
    assert [(s["id"], s["name"], s["state"]) for s in d._scheduled] == [(job, "add", "pending")]
    app.finish_scheduled_functions()
    bridge.flush()
    assert d._scheduled[0]["state"] == "success" and d._tables == [{"name": "notes", "count": 1}]
    d.close()
    app.close()


def test_crons_panel_lists_jobs_and_follows_their_runs(recording_comm: Any, bridge: Any) -> None:
    app = cn.Backend(clock=cn.VirtualClock(), echo_logs=False)

    @app.mutation
    def tick(ctx: Any) -> None:
        ctx.db.insert("ticks", {})

    d = cn.Dashboard(app)
    assert d._crons == []
    app.crons.interval("every minute", {"minutes": 1}, "tick")
    app.crons.cron("nightly", "0 3 * * *", "tick")
    d.refresh()
    assert [(c["name"], c["schedule"], c["function"], c["runs"]) for c in d._crons] == [
        ("every minute", "every 60 s", "tick", 0), ("nightly", "cron 0 3 * * *", "tick", 0),
    ]
    app.advance_time(60_000)
    bridge.flush()  # each run commits and is logged: the dashboard repaints
    runs = {c["name"]: c["runs"] for c in d._crons}
    assert runs["every minute"] >= 1 and runs["nightly"] == 0
    d.close()
    app.close()


def test_files_panel_lists_stored_files_newest_first(recording_comm: Any, bridge: Any) -> None:
    app = cn.Backend(echo_logs=False)

    @app.action
    def save(ctx: Any, text: str) -> str:
        return ctx.storage.store(text.encode(), content_type="text/plain")

    d = cn.Dashboard(app)
    assert d._has_files is True and d._files == []
    first = app.action("save", {"text": "hello"})
    second = app.action("save", {"text": "hello, world"})
    bridge.flush()
    assert [(f["id"], f["size"], f["type"]) for f in d._files] == [(second, 12.0, "text/plain"), (first, 5.0, "text/plain")]
    assert all(f["sha256"] and f["created"] for f in d._files)
    d.close()
    app.close()


def test_display_data_carries_an_html_snapshot(recording_comm: Any, bridge: Any) -> None:
    import re

    app = make_app()
    app.mutation("add", {"text": "n", "pinned": False})
    d = cn.Dashboard(app)
    bundle = d._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data
    page = data["text/html"]
    assert "Dashboard · memory:// · 1 table" in page and "3 functions" in page
    cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>.*?</td>", page)]
    assert cells == ["notes", "1",
                     "add", "mutation", "text, stars, pinned, count, tags",
                     "list_notes", "query", "(unvalidated)",
                     "wipe", "internal mutation", "(unvalidated)"]
    d.close()
    app.close()


def test_admin_actions_edit_delete_clear_cancel(recording_comm: Any, bridge: Any) -> None:
    """Every write goes through one validated transaction; a refused one changes nothing."""
    app = cn.Backend(echo_logs=False, clock=cn.VirtualClock(), schema=cn.define_schema({
        "notes": cn.define_table({"text": v.string(), "n": v.optional(v.int64())}),
    }))

    @app.mutation
    def later(ctx: Any) -> Any:
        return ctx.scheduler.run_after(60_000, "later", {})

    ids = [app.run(lambda ctx, i=i: ctx.db.insert("notes", {"text": f"n{i}"})) for i in range(3)]
    d = cn.Dashboard(app)
    assert d._can_write
    row = next(r for r in d._browser["rows"] if r["key"] == ids[0])
    assert json.loads(row["json"]) == {"text": "n0"}  # the editor's text: the document's own fields
    # edit through browser messages: Convex JSON in, schema-validated
    browser_message(d, {"type": "edit", "id": ids[0], "json": '{"text": "edited", "n": {"$integer": "BQAAAAAAAAA="}}'})
    assert d._notice["ok"] and app.run(lambda ctx: ctx.db.get(ids[0]))["n"] == cn.Int64(5)
    browser_message(d, {"type": "edit", "id": ids[0], "json": '{"text": 42}'})
    assert not d._notice["ok"] and "does not match the schema" in d._notice["text"]
    assert app.run(lambda ctx: ctx.db.get(ids[0]))["text"] == "edited"  # unchanged
    browser_message(d, {"type": "edit", "id": ids[0], "json": "[1]"})
    assert not d._notice["ok"] and "JSON object" in d._notice["text"]
    # delete one, then clear the table
    browser_message(d, {"type": "delete", "ids": [ids[1]]})
    assert d._notice == {"ok": True, "text": "deleted 1 document", "seq": 4} and app.count("notes") == 2
    assert d._tables == [{"name": "notes", "count": 2}]  # the panels followed
    browser_message(d, {"type": "clear", "table": "nosuch"})
    assert not d._notice["ok"] and "no table named 'nosuch'" in d._notice["text"]
    browser_message(d, {"type": "clear", "table": "notes"})
    assert d._notice["text"] == "cleared notes: deleted 2 documents" and app.count("notes") == 0
    # cancel a scheduled job: it never runs
    job = app.mutation("later", {})
    d.refresh()
    assert [j["state"] for j in d._scheduled] == ["pending"]
    browser_message(d, {"type": "cancel", "id": job})
    assert d._notice["ok"] and [j["state"] for j in d._scheduled] == ["canceled"]
    app.advance_time(120_000)
    assert app.run(lambda ctx: ctx.db.system.get(job))["state"] == {"kind": "canceled"}
    d.close()
    app.close()


def test_the_runner_acts_as_a_user(recording_comm: Any, bridge: Any) -> None:
    app = cn.Backend(echo_logs=False)

    @app.query
    def whoami(ctx: Any) -> Any:
        identity = ctx.auth.get_user_identity()
        return None if identity is None else [identity["subject"], identity.get("name")]

    d = cn.Dashboard(app)
    browser_message(d, {"type": "run", "path": "whoami", "form": {}, "identity": "user_1"})
    assert d._result["ok"] and d._result["as"] == "user_1" and json.loads(d._result["text"]) == ["user_1", None]
    browser_message(d, {"type": "run", "path": "whoami", "form": {}, "identity": '{"subject": "ada", "name": "Ada"}'})
    assert json.loads(d._result["text"]) == ["ada", "Ada"]
    browser_message(d, {"type": "run", "path": "whoami", "form": {}, "identity": ""})
    assert d._result["text"] == "null" and d._result["as"] == ""
    browser_message(d, {"type": "run", "path": "whoami", "form": {}, "identity": '{"name": "no subject"}'})
    assert not d._result["ok"] and 'a JSON object with a "subject"' in d._result["error"]
    d.close()
    app.close()


def test_env_panel_actions_report_in_the_header(recording_comm: Any, bridge: Any) -> None:
    """Setting and removing variables are dashboard actions: each outcome in the header."""
    app = cn.Backend(echo_logs=False)
    d = cn.Dashboard(app)
    assert d._env == []
    browser_message(d, {"type": "env_set", "name": "OPENAI_API_KEY", "value": "sk-test"})
    assert d._notice["ok"] and [e["name"] for e in d._env] == ["OPENAI_API_KEY"]
    assert app.env["OPENAI_API_KEY"] == "sk-test" and "sk-test" not in repr(d.get_state())
    browser_message(d, {"type": "env_set", "name": "1BAD", "value": "x"})
    assert not d._notice["ok"] and "1BAD" in d._notice["text"] and d._env_error == d._notice["text"]
    browser_message(d, {"type": "env_remove", "name": "NOPE"})
    assert not d._notice["ok"] and "no environment variable named 'NOPE'" in d._notice["text"]
    browser_message(d, {"type": "env_remove", "name": "OPENAI_API_KEY"})
    assert d._notice["ok"] and d._env == [] and "OPENAI_API_KEY" not in app.env and d._env_error == ""
    d.close()
    app.close()


def test_environment_panel_names_only_and_its_form(recording_comm: Any, bridge: Any) -> None:
    app = cn.Backend(echo_logs=False, env={"API_KEY": "top-secret"})
    d = cn.Dashboard(app)
    assert d._env == [{"name": "API_KEY", "value": "•••••••• (10 chars)"}]
    assert "top-secret" not in repr(d.get_state())  # never in the widget's state (nor a saved notebook)
    browser_message(d, {"type": "env_set", "name": "MODE", "value": "fast"})
    assert app.env["MODE"] == "fast" and [e["name"] for e in d._env] == ["API_KEY", "MODE"]
    browser_message(d, {"type": "env_set", "name": "bad name", "value": "x"})
    assert "letters, digits and underscores" in d._env_error and "bad name" not in app.env
    browser_message(d, {"type": "env_remove", "name": "MODE"})
    assert d._env_error == "" and dict(app.env) == {"API_KEY": "top-secret"}
    app.env["LATER"] = "1"  # a change from elsewhere: the dashboard follows the commit
    bridge.flush()
    assert [e["name"] for e in d._env] == ["API_KEY", "LATER"]
    d.close()
    app.close()
