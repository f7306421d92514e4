"""The compiled fast path of ``v.object``.

Validating arguments and documents is mostly v.object of leaf validators given values of
exactly the right types. For each v.object we generate a function that checks those cases
inline (no call per field) and returns the same dict the generic loop would; anything else
(a missing or extra field, a value that needs converting, a mismatch) returns _NOPE, and the
generic loop runs instead, so results and error messages are those of the generic code.

A table's document validator also gets a *document* variant, which in the same pass makes
the checks ``normalize_document`` makes after validation (top-level names, lengths, nesting,
size) and notes whether the document is plain JSON (see ``dumps_document``); it returns
``(document, size, plain)``, or None to take the general path (which then reports whatever
is wrong). ASCII-only strings keep it simple: other strings take the general path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from convex_notebook.values._check import (
    MAX_ARRAY_LENGTH,
    MAX_DOCUMENT_NESTING,
    _check_value,
)
from convex_notebook.values._codec import _plain
from convex_notebook.values._model import MAX_SAFE_INT, MISSING
from convex_notebook.values._size import MAX_DOCUMENT_SIZE, SYSTEM_FIELDS_SIZE

from .base import _NOPE, Validator
from .messages import _Mismatch
from .scalars import BooleanValidator, Float64Validator, NullValidator, StringValidator

if TYPE_CHECKING:
    from .containers import ArrayValidator

_MAX_SAFE_INT = MAX_SAFE_INT

_LEAF_TYPES = {"StringValidator": "str", "Float64Validator": "float", "BooleanValidator": "bool"}


def _fast_field_check(fv: Validator, var: str, name: str, measure: bool) -> list[str] | None:
    """Lines checking ``var`` (present) against a leaf validator and, when ``measure``, adding
    its size to ``size``; None when the field needs its validator's generic ``_conv``."""
    t = type(fv)
    field = len(name) + 1  # the name and its separator, as document sizes count them
    if t is StringValidator:
        if not measure:
            return [f"if type({var}) is not str: return NOPE"]
        return [f"if type({var}) is not str or not {var}.isascii(): return NOPE", f"size += {field + 2} + len({var})"]
    if t is Float64Validator:
        lines = [
            f"if type({var}) is not float:",
            f"    if type({var}) is int and -SAFE <= {var} <= SAFE: {var} = float({var})",
            "    else: return NOPE",
        ]
        if measure:  # NaN, ±inf and -0.0 are not plain JSON
            lines += [f"size += {field + 9}", f"if not ({var} - {var} == 0.0 and ({var} != 0.0 or copysign(1.0, {var}) > 0.0)): plain = False"]
        return lines
    if t is BooleanValidator:
        return [f"if {var} is not True and {var} is not False: return NOPE"] + ([f"size += {field + 1}"] if measure else [])
    if t is NullValidator:
        return [f"if {var} is not None: return NOPE"] + ([f"size += {field + 1}"] if measure else [])
    # v.array of a leaf (ArrayValidator by its kind: containers.py builds on this module)
    element = _LEAF_TYPES.get(type(cast("ArrayValidator", fv).element).__name__) if fv.kind == "array" else None
    if element is None:
        return None
    lines = [f"if type({var}) is not list: return NOPE"]
    if not measure:
        return lines + [f"for e in {var}:", f"    if type(e) is not {element}: return NOPE", f"{var} = {var}[:]"]
    lines += [f"if len({var}) > MAX_ARRAY: return NOPE", "s = 2"]
    if element == "str":
        lines += [f"for e in {var}:", "    if type(e) is not str or not e.isascii(): return NOPE", "    s += 2 + len(e)"]
    else:
        lines += [f"for e in {var}:", f"    if type(e) is not {element}: return NOPE"]
        if element == "float":
            lines.append("    if not (e - e == 0.0 and (e != 0.0 or copysign(1.0, e) > 0.0)): plain = False")
        lines.append(f"s += {9 if element == 'float' else 1} * len({var})")
    return lines + [f"{var} = {var}[:]", f"size += {field} + s"]


def _compile_object_fast_path(
    items: tuple[tuple[str, Validator, bool], ...], measure: bool = False
) -> Callable[[dict, Any], Any]:
    """``fast(raw, id_table)`` for a v.object with these fields (see above); ``raw`` is a dict.

    With ``measure``: the document variant, returning ``(document, size, plain)`` or None.
    """
    env: dict[str, Any] = {
        "MISSING": MISSING, "NOPE": None if measure else _NOPE, "Mismatch": _Mismatch,
        "SAFE": _MAX_SAFE_INT, "MAX_ARRAY": MAX_ARRAY_LENGTH, "check_value": _check_value,
        "is_plain": _plain, "copysign": math.copysign,
    }
    body = ["get = raw.get", "n = 0"]
    if measure:
        body += [f"size = {2 + SYSTEM_FIELDS_SIZE}", "plain = True"]
    for i, (name, fv, optional) in enumerate(items):  # names are identifiers: safe in source
        var = f"v{i}"
        body.append(f"{var} = get({name!r}, MISSING)")
        check = _fast_field_check(fv, var, name, measure)
        if check is None:
            env[f"conv{i}"] = fv._conv
            check = ["try:", f"    {var} = conv{i}({var}, id_table)"]
            if measure:  # any other failure (a limit, a non-canonical value): the general path
                check.append(f"    size += {len(name) + 1} + check_value({var}, 1, {MAX_DOCUMENT_NESTING})")
                check.append(f"    if plain and not is_plain({var}): plain = False")
            check += ["except Mismatch:" if not measure else "except Exception:", "    return NOPE"]
        if optional:
            body.append(f"if {var} is not MISSING:")
            body += ["    n += 1"] + ["    " + line for line in check]
        else:
            body.append(f"if {var} is MISSING: return NOPE")
            body += check
    required = sum(1 for _, _, optional in items if not optional)
    body.append(f"if n + {required} != len(raw): return NOPE")  # extra fields: the generic loop decides
    if measure:
        body.append(f"if size > {MAX_DOCUMENT_SIZE}: return NOPE")
    result = "(out, size, plain)" if measure else "out"
    if all(not optional for _, _, optional in items):
        pairs = ", ".join(f"{name!r}: v{i}" for i, (name, _, _) in enumerate(items))
        body.append(f"out = {{{pairs}}}")
    else:  # same key order as the generic loop: declaration order, absent optionals skipped
        body.append("out = {}")
        for i, (name, _, optional) in enumerate(items):
            line = f"out[{name!r}] = v{i}"
            body.append(f"if v{i} is not MISSING: {line}" if optional else line)
    body.append(f"return {result}")
    source = "def fast(raw, id_table):\n" + "".join(f"    {line}\n" for line in body)
    exec(source, env)  # noqa: S102 - generated from validator types and identifier field names
    return env["fast"]
