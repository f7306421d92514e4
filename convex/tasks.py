# convex/tasks.py: the module `tasks` (tasks:list, tasks:add, tasks:toggle), as convex/tasks.ts.
# `convex-notebook dev` serves this folder and redeploys a file when you save it.
import convex_notebook as cn
from convex_notebook import v


@cn.query(args={"done": v.optional(v.boolean())})
def list(ctx, done=None):
    tasks = ctx.db.query("tasks")
    if done is not None:
        tasks = tasks.with_index("by_done", lambda q: q.eq("done", done))
    return tasks.collect()


@cn.mutation(args={"text": v.string()})
def add(ctx, text):
    return ctx.db.insert("tasks", {"text": text, "done": False})


@cn.mutation(args={"id": v.id("tasks")})
def toggle(ctx, id):
    task = ctx.db.get(id)
    ctx.db.patch(id, {"done": not task["done"]})
