"""Hypothesis strategies for canonical Convex values, and an independent reference order."""

from __future__ import annotations

import math
import struct
from typing import Any

from hypothesis import strategies as st

from convex_notebook.values import MISSING, Int64

# Printable ASCII, as Convex requires for object keys.
keys = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=6).filter(
    lambda k: not k.startswith("$")
)
# Valid Unicode (no lone surrogates), NUL included: the key encoding must escape it.
strings = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8)
int64s = st.integers(min_value=-(2**63), max_value=2**63 - 1).map(Int64)
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, math.nan, -math.nan, math.inf, -math.inf, 5e-324, -5e-324]),
)
scalars = st.one_of(
    st.none(), st.booleans(), int64s, floats, strings, st.binary(max_size=8)
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(keys, inner, max_size=4),
    ),
    max_leaves=12,
)
values_or_missing = st.one_of(st.just(MISSING), values)


def _rank(v: Any) -> int:
    if v is MISSING:
        return 0
    for i, t in enumerate((type(None), Int64, float, bool, str, bytes, list, dict), start=1):
        if type(v) is t:
            return i
    raise TypeError(type(v))


def _float_key(x: float) -> tuple[int, float, float]:
    """IEEE totalOrder written out: NaNs by sign then payload, -0.0 below 0.0."""
    if math.isnan(x):
        bits = struct.unpack(">Q", struct.pack(">d", x))[0] & ((1 << 63) - 1)
        return (1, float(bits), 0.0) if math.copysign(1.0, x) > 0 else (-1, -float(bits), 0.0)
    return (0, x, math.copysign(1.0, x))


def _cmp(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def reference_compare(a: Any, b: Any) -> int:
    """Convex's order, written directly from the spec (no key encoding)."""
    ra, rb = _rank(a), _rank(b)
    if ra != rb:
        return _cmp(ra, rb)
    t = type(a)
    if a is MISSING or a is None:
        return 0
    if t is float:
        return _cmp(_float_key(a), _float_key(b))
    if t is str:
        return _cmp(a.encode(), b.encode())
    if t in (Int64, bool, bytes):
        return _cmp(a, b)
    if t is list:
        for x, y in zip(a, b):
            c = reference_compare(x, y)
            if c:
                return c
        return _cmp(len(a), len(b))
    pa, pb = sorted(a.items()), sorted(b.items())
    for (ka, va), (kb, vb) in zip(pa, pb):
        c = _cmp(ka.encode(), kb.encode()) or reference_compare(va, vb)
        if c:
            return c
    return _cmp(len(pa), len(pb))


def same(a: Any, b: Any) -> bool:
    """Structural identity: same types everywhere, floats bit for bit (NaN == NaN, -0.0 != 0.0)."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return struct.pack(">d", a) == struct.pack(">d", b)
    if type(a) is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b
