"""LiveQuery widget state, as the front end receives it (through a recording comm)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import convex_notebook as cn
from convex_notebook import v
from convex_notebook.notebook.widgets import LiveQuery


def last_state(widget: LiveQuery) -> dict:
    return widget.comm.updates()[-1]


def test_initial_render_is_in_the_open_message(recording_comm: Any, bridge: Any, chat: Any) -> None:
    chat.mutation("messages:send", {"body": "hello"})
    lq = chat.live("messages:list")
    assert isinstance(lq, LiveQuery) and isinstance(lq, cn.LiveQuery)
    opened = [d for t, d in lq.comm.sent if t == "comm_open"]
    # the first value was rendered before the comm opened: no update needed to show it
    assert not [d for t, d in lq.comm.sent if t == "comm_msg"]
    assert lq.rendered_columns == ["_id", "body", "channel", "_creationTime"]
    assert [row[1:3] for row in lq.rendered_rows()] == [["hello", "general"]]
    assert lq._total == 1 and lq._status == "live" and lq._changed == []
    assert "live_table" not in str(opened)  # the ESM travels as text, not a path
    assert lq.status == "live" and lq.value[0]["body"] == "hello"


def test_esm_is_inline_and_imports_nothing(recording_comm: Any, bridge: Any, chat: Any) -> None:
    lq = chat.live("messages:list")
    assert "export default" in lq._esm
    assert "import " not in lq._esm and "http" not in lq._esm  # no CDN, works offline
    assert ".cn-live" in lq._css


def test_a_mutation_reaches_the_front_end_as_one_update(recording_comm: Any, bridge: Any, chat: Any) -> None:
    lq = chat.live("messages:list")
    before = len(lq.comm.updates())
    chat.mutation("messages:send", {"body": "one"})
    chat.wait_for_callbacks()
    assert len(lq.comm.updates()) == before  # nothing touched the widget off the kernel loop
    assert bridge.pending == 1
    bridge.flush()
    updates = lq.comm.updates()
    assert len(updates) == before + 1  # hold_sync: every trait of the render in one message
    state = updates[-1]
    assert {"_rows", "_total", "_changed", "_seq"} <= set(state)
    assert [r["cells"][1] for r in state["_rows"]] == ["one"]
    assert state["_changed"] == [state["_rows"][0]["key"]]
    assert state["_rows"][0]["key"] == lq.value[0]["_id"]  # row identity is the document id


def test_many_mutations_before_a_flush_coalesce(recording_comm: Any, bridge: Any, chat: Any) -> None:
    lq = chat.live("messages:list")
    before = len(lq.comm.updates())
    for i in range(20):
        chat.mutation("messages:send", {"body": f"m{i}"})
    chat.wait_for_callbacks()
    bridge.flush()
    assert len(lq.comm.updates()) == before + 1
    assert last_state(lq)["_total"] == 20
    assert bridge.stats.applied == 1
    assert bridge.flush() == 0  # nothing left


def test_only_changed_rows_are_marked(recording_comm: Any, bridge: Any, chat: Any) -> None:
    ids = [chat.mutation("messages:send", {"body": f"m{i}"}) for i in range(3)]
    lq = chat.live("messages:list")
    chat.mutation("messages:edit", {"id": ids[1], "body": "edited"})
    chat.wait_for_callbacks()
    bridge.flush()
    assert last_state(lq)["_changed"] == [ids[1]]
    new = chat.mutation("messages:send", {"body": "new"})
    chat.wait_for_callbacks()
    bridge.flush()
    assert last_state(lq)["_changed"] == [new]


def test_rows_are_capped_with_a_count(recording_comm: Any, bridge: Any, chat: Any) -> None:
    for i in range(12):
        chat.mutation("messages:send", {"body": f"m{i}"})
    lq = chat.live("messages:list", max_rows=5)
    assert len(lq.rendered_rows()) == 5 and lq._total == 12
    assert len(lq.value) == 12  # .value is the whole result
    assert repr(lq) == "LiveQuery('messages:list', rows=12, status='live')"


def test_repr_is_deterministic(recording_comm: Any, bridge: Any, chat: Any) -> None:
    lq = chat.live("messages:list", {"channel": "random"})
    assert repr(lq) == "LiveQuery('messages:list', {'channel': 'random'}, rows=0, status='live')"
    data, _meta = lq._repr_mimebundle_()
    assert data["text/plain"] == repr(lq)
    assert "application/vnd.jupyter.widget-view+json" in data


def test_close_unsubscribes_and_stops_updates(recording_comm: Any, bridge: Any, chat: Any) -> None:
    lq = chat.live("messages:list")
    hub = chat.subscription_hub
    assert hub.subscription_count == 1
    lq.close()
    assert hub.subscription_count == 0
    assert lq.status == "closed" and repr(lq).endswith("status='closed')")
    sent = len(lq.comm.sent) if lq.comm is not None else 0
    chat.mutation("messages:send", {"body": "after"})
    chat.wait_for_callbacks()
    assert bridge.pending == 0
    lq.close()  # idempotent
    assert sent >= 0


def test_query_errors_show_and_recover(recording_comm: Any, bridge: Any, app: Any) -> None:
    @app.query
    def strict(ctx: Any) -> Any:
        docs = ctx.db.query("items").collect()
        if any(d["n"] < 0 for d in docs):
            raise cn.ConvexError({"reason": "negative"})
        return docs

    @app.mutation
    def put(ctx: Any, n: float) -> Any:
        return ctx.db.insert("items", {"n": n})

    app.mutation("put", {"n": 1})
    lq = app.live("strict")
    bad = app.mutation("put", {"n": -1})
    app.wait_for_callbacks()
    bridge.flush()
    state = last_state(lq)
    assert state["_status"] == "error" and "negative" in state["_error"]
    assert lq.status == "error" and isinstance(lq.error, cn.ConvexError)
    assert len(lq.value) == 1  # the last good value stays
    app.run(lambda ctx: ctx.db.delete(bad))
    app.wait_for_callbacks()
    bridge.flush()
    assert last_state(lq)["_status"] == "live" and lq.error is None


def test_non_table_results(recording_comm: Any, bridge: Any, app: Any) -> None:
    @app.query
    def count(ctx: Any) -> Any:
        return len(ctx.db.query("items").collect())

    @app.query
    def page(ctx: Any) -> Any:
        return ctx.db.query("items").paginate({"numItems": 2, "cursor": None})

    for i in range(3):
        app.run(lambda ctx, i=i: ctx.db.insert("items", {"n": i}))
    scalar = app.live("count")
    assert scalar._shape == "value" and scalar._scalar == "3"
    assert repr(scalar) == "LiveQuery('count', value, status='live')"
    paged = app.live("page")
    assert paged._shape == "table" and paged._total == 2  # the page's documents


def test_value_formatting_in_cells(recording_comm: Any, bridge: Any, app: Any) -> None:
    app.run(lambda ctx: ctx.db.insert("t", {"i": cn.Int64(5), "b": b"abc", "n": None, "o": {"x": [1, 2.5]}}))
    app.run(lambda ctx: ctx.db.insert("t", {"i": cn.Int64(6)}))

    @app.query
    def all_t(ctx: Any) -> Any:
        return ctx.db.query("t").collect()

    lq = app.live("all_t", columns=["i", "b", "n", "o"])
    assert lq.rendered_rows() == [["5n", "<3 bytes>", "null", '{"x": [1, 2.5]}'], ["6n", None, None, None]]


def test_wait_for_a_background_writer(recording_comm: Any, bridge: Any, chat: Any) -> None:
    lq = chat.live("messages:list")

    def writer() -> None:
        for i in range(5):
            chat.mutation("messages:send", {"body": f"bg{i}"})

    thread = threading.Thread(target=writer)
    thread.start()
    value = lq.wait_for(lambda rows: len(rows) == 5, timeout=30)
    thread.join()
    assert [m["body"] for m in value] == [f"bg{i}" for i in range(5)]
    # wait_for on the main thread also brought the widget up to date
    assert lq._total == 5


def test_wait_for_times_out_with_the_last_value(recording_comm: Any, bridge: Any, chat: Any) -> None:
    lq = chat.live("messages:list")
    with pytest.raises(TimeoutError, match=r"messages:list.*last value: \[\]"):
        lq.wait_for(lambda rows: len(rows) > 0, timeout=0.05)


async def _wait_async(lq: LiveQuery, chat: Any) -> Any:
    import asyncio

    task = asyncio.ensure_future(lq.wait_for_async(lambda rows: len(rows) == 1, timeout=30))
    await asyncio.to_thread(chat.mutation, "messages:send", {"body": "async"})
    return await task


def test_wait_for_async(recording_comm: Any, bridge: Any, chat: Any) -> None:
    import asyncio

    lq = chat.live("messages:list")
    value = asyncio.run(_wait_async(lq, chat))
    assert value[0]["body"] == "async"


def test_df_is_a_snapshot(recording_comm: Any, bridge: Any, chat: Any) -> None:
    chat.mutation("messages:send", {"body": "a"})
    lq = chat.live("messages:list")
    frame = lq.df
    assert list(frame["body"]) == ["a"]
    chat.mutation("messages:send", {"body": "b"})
    assert list(frame["body"]) == ["a"]  # never mutated in place
    assert list(lq.df["body"]) == ["a", "b"]


def test_redefining_the_query_rerenders(recording_comm: Any, bridge: Any, app: Any) -> None:
    @app.query
    def greeting(ctx: Any) -> Any:
        return [{"text": "hello"}]

    lq = app.live("greeting")
    assert lq.rendered_rows() == [["hello"]]

    @app.query  # re-running the cell that defines it
    def greeting(ctx: Any) -> Any:  # noqa: F811
        return [{"text": "bonjour"}]

    app.wait_for_callbacks()
    bridge.flush()
    assert lq.rendered_rows() == [["bonjour"]]


def test_invalid_arguments_fail_at_creation(recording_comm: Any, bridge: Any, chat: Any) -> None:
    with pytest.raises(cn.ValidationError, match="channel"):
        chat.live("messages:list", {"channel": 3})
    with pytest.raises(cn.FunctionNotFound):
        chat.live("messages:nope")


def test_rerunning_a_cell_closes_the_widget_it_made(shell: Any, recording_comm: Any) -> None:
    shell.run_cell("import convex_notebook as cn\napp = cn.Backend(echo_logs=False)\n"
                   "@app.query\ndef q(ctx): return []\n")
    app = shell.user_ns["app"]
    shell.run_cell("w = app.live('q')", cell_id="cell-1")
    first = shell.user_ns["w"]
    shell.run_cell("other = app.live('q')", cell_id="cell-2")
    assert app.subscription_hub.subscription_count == 2
    shell.run_cell("w = app.live('q')", cell_id="cell-1")  # re-run
    second = shell.user_ns["w"]
    assert first.closed and not second.closed and not shell.user_ns["other"].closed
    assert app.subscription_hub.subscription_count == 2
    app.close()


def test_a_cell_may_make_several_widgets(shell: Any, recording_comm: Any) -> None:
    shell.run_cell("import convex_notebook as cn\napp = cn.Backend(echo_logs=False)\n"
                   "@app.query\ndef q(ctx): return []\n")
    shell.run_cell("a = app.live('q'); b = app.live('q')", cell_id="cell-x")
    assert not shell.user_ns["a"].closed and not shell.user_ns["b"].closed
    shell.user_ns["app"].close()


def test_engine_layers_do_not_import_the_notebook_layer() -> None:
    import subprocess
    import sys

    code = (
        "import sys, convex_notebook, convex_notebook.engine, convex_notebook.store, convex_notebook.backend\n"
        "import convex_notebook as cn\n"
        "app = cn.Backend(); app.run(lambda ctx: ctx.db.insert('t', {}))\n"
        "bad = [m for m in ('IPython', 'ipywidgets', 'anywidget', 'ipykernel', 'comm') if m in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_validators_from_the_fixture_are_real(chat: Any) -> None:
    # guards the fixture: arguments are validated, so widget args errors are meaningful
    with pytest.raises(cn.ValidationError):
        chat.mutation("messages:send", {"body": 1})
    assert v.string().is_valid("x")


def _bundle(widget: Any) -> dict:
    bundle = widget._repr_mimebundle_()
    return bundle[0] if isinstance(bundle, tuple) else bundle


def test_display_data_carries_an_html_snapshot(recording_comm: Any, bridge: Any, chat: Any) -> None:
    """Where no widget front end runs (GitHub, nbviewer, a saved notebook), the table shows."""
    import re

    chat.mutation("messages:send", {"body": "hello"})
    chat.mutation("messages:send", {"body": "<b>bold</b>"})
    lq = chat.live("messages:list", columns=["body", "channel"])
    data = _bundle(lq)
    assert "application/vnd.jupyter.widget-view+json" in data and data["text/plain"] == repr(lq)
    page = data["text/html"]
    assert "messages:list · showing 2 of 2 rows · a snapshot (live)" in page
    cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>.*?</td>", page)]
    assert cells == ["hello", "general", "&lt;b&gt;bold&lt;/b&gt;", "general"]
    chat.mutation("messages:send", {"body": "third"})
    assert "showing 3 of 3 rows" in _bundle(lq)["text/html"]  # the snapshot is taken when displayed
    lq.close()
