# Functions served to the official clients in the interop tests (tests/server/test_interop_*.py).
# A `convex-notebook serve --functions` file: `app`, `cn` and `v` are predefined.
import math

messages = app.module("messages")  # noqa: F821 - predefined by the loader
values = app.module("values")  # noqa: F821
errors = app.module("errors")  # noqa: F821
actions = app.module("actions")  # noqa: F821
auth = app.module("auth")  # noqa: F821


@messages.query
def list(ctx):  # noqa: A001 - Convex's usual name
    return [{"author": m["author"], "body": m["body"]} for m in ctx.db.query("messages").collect()]


@messages.mutation(args={"author": v.string(), "body": v.string()})  # noqa: F821
def send(ctx, author, body):
    print(f"send from {author}")
    return ctx.db.insert("messages", {"author": author, "body": body})


@values.mutation
def store(ctx, value):
    doc_id = ctx.db.insert("values", {"value": value})
    return ctx.db.get(doc_id)["value"]


@values.query
def latest(ctx):
    doc = ctx.db.query("values").order("desc").first()
    return doc["value"] if doc else None


@values.query
def sample(ctx):
    return {
        "int64": cn.Int64(-5),  # noqa: F821
        "int64_max": cn.Int64(2**63 - 1),  # noqa: F821
        "bytes": b"\x00\x01\xff",
        "nan": math.nan,
        "neg_zero": -0.0,
        "inf": math.inf,
        "ninf": -math.inf,
        "float": 1.5,
        "whole": 3.0,
        "text": "héllo ☃",
        "nested": {"list": [cn.Int64(1), b"\x07", None, True]},  # noqa: F821
    }


@errors.mutation
def convexError(ctx):  # noqa: N802 - a JS-style function name
    ctx.db.insert("messages", {"author": "error", "body": "must be rolled back"})
    raise cn.ConvexError({"code": 42, "big": cn.Int64(7), "why": "nope"})  # noqa: F821


@errors.query
def boom(ctx):
    raise ValueError("boom")


@actions.action
def hello(ctx, name):
    return f"hello {name}"


@auth.query
def whoami(ctx):
    identity = ctx.auth.get_user_identity()
    return None if identity is None else {"subject": identity["subject"], "name": identity.get("name")}


@app.internal_mutation(name="admin:secret")  # noqa: F821
def secret(ctx):
    ctx.db.insert("messages", {"author": "admin", "body": "secret"})
    return "internal ok"


load = app.module("load")  # noqa: F821 - the load test (tests/server/test_server_load.py)


@load.mutation
def bump(ctx, name, id=None):  # noqa: A002
    """A client's first bump creates its counter and returns its id; later ones pass the id,
    so each reads only its own counter and clients' mutations never conflict (a filter over
    the table would read every counter before its own: under optimistic concurrency, every
    other client's write would make it run again)."""
    if id is None:
        return ctx.db.insert("counters", {"name": name, "value": 1})
    doc = ctx.db.get(id)
    ctx.db.patch(id, {"value": doc["value"] + 1})
    return id


@load.query
def all(ctx):  # noqa: A001
    return {d["name"]: d["value"] for d in ctx.db.query("counters").collect()}
