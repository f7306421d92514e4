# convex/schema.py: the deployment's schema (Convex's convex/schema.ts).
import convex_notebook as cn
from convex_notebook import v

schema = cn.define_schema({
    "tasks": cn.define_table({"text": v.string(), "done": v.boolean()}).index("by_done", ["done"]),
})
