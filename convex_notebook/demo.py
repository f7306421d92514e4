"""A two-minute tour of the embedded backend: ``python -m convex_notebook.demo [path]``.

Defines a tiny tasks app, subscribes to a query, and shows the subscription following every
commit, whoever makes it (a mutation, an inline ``app.run``, a background thread).
"""

from __future__ import annotations

import sys
import threading

import convex_notebook as cn
from convex_notebook import v


def build(path: str | None = None) -> cn.Backend:
    schema = cn.define_schema({
        "tasks": cn.define_table({"text": v.string(), "done": v.boolean()}).index("by_done", ["done"]),
    })
    app = cn.Backend(path, schema=schema, echo_logs=False)
    tasks = app.module("tasks")

    @tasks.query(args={"done": v.boolean()})
    def by_status(ctx, done):
        rows = ctx.db.query("tasks").with_index("by_done", lambda q: q.eq("done", done)).collect()
        return [row["text"] for row in rows]

    @tasks.mutation(args={"text": v.string()})
    def add(ctx, text):
        return ctx.db.insert("tasks", {"text": text, "done": False})

    @tasks.mutation(args={"id": v.id("tasks")})
    def finish(ctx, id):
        ctx.db.patch(id, {"done": True})

    return app


def main(argv: list[str]) -> int:
    path = argv[0] if argv else None
    app = build(path)
    print(f"backend: {app!r}")
    todo = app.subscribe("tasks:by_status", {"done": False},
                         on_update=lambda rows: print(f"  live 'to do' list is now {rows}"))
    print(f"subscribed: to do = {todo.value}")
    first = app.mutation("tasks:add", {"text": "write the docs"})
    app.mutation("tasks:add", {"text": "ship it"})
    app.wait_for_callbacks()
    app.mutation("tasks:finish", {"id": first})
    app.wait_for_callbacks()
    worker = threading.Thread(target=app.mutation, args=("tasks:add", {"text": "added by a thread"}))
    worker.start()
    worker.join()
    app.wait_for_callbacks()
    print(f"done: {app.query('tasks:by_status', {'done': True})}")
    try:
        app.mutation("tasks:add", {"text": 42})
    except cn.ValidationError as exc:
        print(f"bad input is rejected: {exc}")
    stats = app.reactivity
    print(f"reactivity: {stats.executions} executions, {stats.reruns} re-runs, {stats.cache_hits} cache hits")
    todo.unsubscribe()
    app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
