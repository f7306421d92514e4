"""Function definitions, their canonical paths, and the registry that holds them."""

from __future__ import annotations

import functools
import inspect
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConvexFunctionError
from ..values.validators import (
    AnyValidator,
    Validator,
    args_validator,
    returns_validator,
)
from . import logs

__all__ = [
    "FunctionDef",
    "FunctionNotFound",
    "RegisteredFunction",
    "Registry",
    "canonical_path",
]

_PATH = re.compile(r"^[A-Za-z0-9_./-]+(:[A-Za-z0-9_]+)?$")


class FunctionNotFound(ConvexFunctionError):
    """No (public) function at that path."""


def canonical_path(name: str) -> str:
    """Convex's canonical form: ``module:function``; ``module`` means ``module:default``;
    a ``.js`` suffix on the module is dropped. A bare registered name stays bare."""
    if not isinstance(name, str) or not name:
        raise FunctionNotFound(f"A function path must be a non-empty string, got {name!r}")
    module, sep, fn = name.rpartition(":")
    if not sep:
        module, fn = name, ""
    module = module.removesuffix(".js")
    return f"{module}:{fn}" if fn else module


@dataclass
class FunctionDef:
    """A registered query, mutation or action."""

    path: str
    kind: str
    internal: bool
    handler: Callable[..., Any]
    args: Validator | None
    returns: Validator | None
    pass_args_dict: bool  # handler(ctx, args) in Convex's style rather than handler(ctx, **args)

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.handler)

    @property
    def visibility(self) -> str:
        return "internal" if self.internal else "public"

    def call(self, ctx: Any, args: dict) -> Any:
        if self.pass_args_dict:
            return self.handler(ctx, args)
        return self.handler(ctx, **args)


class RegisteredFunction:
    """What the decorators return: a reference usable in ``app.query(ref, ...)`` and
    ``ctx.run_query(ref, ...)``, still callable as the plain Python function it wraps."""

    def __init__(self, definition: FunctionDef) -> None:
        self.definition = definition
        functools.update_wrapper(self, definition.handler)

    @property
    def path(self) -> str:
        return self.definition.path

    @property
    def kind(self) -> str:
        return self.definition.kind

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.definition.handler(*args, **kwargs)

    def __repr__(self) -> str:
        prefix = "internal_" if self.definition.internal else ""
        return f"<{prefix}{self.kind} {self.path}>"


def _wants_args_dict(handler: Callable[..., Any]) -> bool:
    try:
        params = list(inspect.signature(handler).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(params) == 2 and len(positional) == 2 and positional[1].name == "args"


def make_definition(
    kind: str,
    handler: Callable[..., Any],
    *,
    internal: bool,
    name: str | None,
    module: str | None,
    args: Any,
    returns: Any,
) -> FunctionDef:
    if not callable(handler):
        raise TypeError(f"@{kind} decorates a function, got {type(handler).__name__}")
    logs.bind_print(handler)  # its print writes the call's log lines (see backend/logs.py)
    fn_name = getattr(handler, "__name__", None)
    if name is None:
        if not fn_name or fn_name == "<lambda>":
            raise TypeError(f"A {kind} needs a name: pass name='module:function' for a lambda")
        name = f"{module}:{fn_name}" if module else fn_name
    elif module and ":" not in name:
        name = f"{module}:{name}"
    path = canonical_path(name)
    if not _PATH.match(path):
        raise ValueError(
            f"Invalid function path {path!r}: use letters, digits, underscores and '/' in the module, "
            "and an identifier after ':'"
        )
    if kind != "action" and inspect.iscoroutinefunction(handler):
        raise TypeError(
            f"{kind} {path}: queries and mutations are plain `def` functions (they are deterministic "
            "transactions); use an action for async work"
        )
    if returns is not None and not isinstance(returns, (Validator, dict)):
        raise TypeError(f"returns= takes a validator such as v.string(), got {type(returns).__name__}")
    if isinstance(args, AnyValidator):
        args = None  # Convex accepts args=v.any(): any (object of) arguments
    validator = args_validator(args)
    # ``def f(ctx, args)`` receives the dict, unless "args" is itself a declared argument.
    wants_dict = _wants_args_dict(handler) and (validator is None or "args" not in validator.fields)
    return FunctionDef(
        path=path,
        kind=kind,
        internal=internal,
        handler=handler,
        args=validator,
        returns=returns_validator(returns),
        pass_args_dict=wants_dict,
    )


class Registry:
    """Functions by canonical path; tells listeners when one is (re)defined."""

    def __init__(self) -> None:
        self._functions: dict[str, FunctionDef] = {}
        self._lock = threading.Lock()
        self.listeners: list[Callable[[str], None]] = []

    def register(self, definition: FunctionDef) -> RegisteredFunction:
        with self._lock:
            self._functions[definition.path] = definition
        for listener in list(self.listeners):
            listener(definition.path)
        return RegisteredFunction(definition)

    def remove(self, path: str) -> None:
        with self._lock:
            self._functions.pop(path, None)
        for listener in list(self.listeners):
            listener(path)

    def lookup(self, ref: Any) -> FunctionDef | None:
        if type(ref) is str:  # fast path: already a registered (hence canonical) path
            found = self._functions.get(ref)
            if found is not None:
                return found
        if isinstance(ref, RegisteredFunction):
            return self._functions.get(ref.path)
        if isinstance(ref, FunctionDef):
            return self._functions.get(ref.path)
        path = canonical_path(ref)
        found = self._functions.get(path)
        if found is None and path.endswith(":default"):
            found = self._functions.get(path[: -len(":default")])  # a bare registered name
        if found is None and ":" not in path:
            found = self._functions.get(f"{path}:default")
        return found

    def all(self) -> list[FunctionDef]:
        with self._lock:
            return sorted(self._functions.values(), key=lambda d: d.path)
