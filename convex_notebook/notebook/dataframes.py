"""pandas adapters: documents ↔ DataFrames, table imports, schema inference.

    df = app.df("tasks")                        # a whole table, in _creationTime order
    df = cn.to_dataframe(app.query("tasks:list"))
    docs = cn.from_dataframe(df)                # → list of documents
    app.import_dataframe("tasks", df, mode="append")
    app.set_schema(cn.define_schema({"tasks": cn.infer_schema(df)}))

Types both ways:

=====================  ==========================================================
Convex                 pandas
=====================  ==========================================================
Float64                ``float64`` (``Float64`` when some documents lack the field)
Int64                  nullable ``Int64``
Boolean                ``bool`` (``boolean`` when some documents lack the field)
String                 ``str`` (``string``, with ``pd.NA``, when some lack the field)
Bytes, Array, Object,  ``object`` column holding ``bytes``, ``list``, ``dict``,
Null, mixed types      ``None``...
``_creationTime``      ``datetime64[ns, UTC]`` (exact: converts back to the same float)
``_id``                ``str``
=====================  ==========================================================

Missing is never null and never NaN: a field a document lacks is ``pd.NA`` in its column
(``NaT`` for datetimes) and ``cn.from_dataframe`` omits it again; ``None`` is Convex's
``null``; a float ``NaN`` is the Float64 value NaN. The exceptions are the columns where NaN
can only mean "missing": string (pandas 3's ``str`` dtype stores missing as NaN), categorical
and datetime (``NaT``) columns. ``from_dataframe(df, nan="missing")`` also reads NaN in float
and object columns as missing (for frames made by ``merge``/``reindex``).

Integer columns: pandas' nullable ``Int64`` (and ``Int32``, ``UInt8``...) become Convex Int64;
plain numpy ``int64`` columns become Float64 like a Python ``int`` (a JS number), and must fit
in ±2^53 (else use ``df.astype({"col": "Int64"})``). The other way, a column of whole Float64
numbers (``120`` from a CSV) reads as numpy ``int64`` so that it shows as ``120``, not ``120.0``. Other datetime columns become Float64
milliseconds since the epoch (Convex's convention for times); timedeltas become milliseconds.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ..errors import InvalidValueError
from ..values import MISSING, Int64, is_id
from ..values._codec import _decode, _from_stored

try:  # faster than json's decoder on stored documents (a third less time for app.df)
    from orjson import loads as _orjson_loads
except ImportError:  # pragma: no cover - orjson is a dependency
    _orjson_loads = None  # type: ignore[assignment]
from ..values._model import INT64_MAX, MAX_SAFE_INT, _Missing
from ..values.schema import TableDefinition, define_table
from ..values.validators import AnyValidator, ObjectValidator, Validator, v
from ..values.validators.base import is_identifier

if TYPE_CHECKING:
    from ..backend.contract import Deployment

__all__ = [
    "DataFrameError",
    "ImportMode",
    "dataframe",
    "from_dataframe",
    "import_dataframe",
    "infer_schema",
    "table_dataframe",
    "to_dataframe",
]

ImportMode = Literal["insert", "replace", "append"]
NanPolicy = Literal["keep", "missing", "null"]

SYSTEM_FIELDS = ("_id", "_creationTime")


class DataFrameError(InvalidValueError, TypeError):
    """A frame, documents or an option the adapters cannot take (a column's dtype, its name,
    an argument). Both a ``ValueError`` and a ``TypeError``, as these errors were before; an
    ``InvalidValueError`` so that a notebook shows it short (``tracebacks.py``)."""


_NS_PER_MS = 1_000_000
# Frames at least this long show a progress bar while importing (progress=None).
PROGRESS_THRESHOLD = 100_000


# ---------------------------------------------------------------------------------------------
# documents → DataFrame


def _ms_to_datetime(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Float milliseconds → datetime64[ns] values, exactly invertible by :func:`_datetime_to_ms`.

    ``ms * 1e6`` in floating point can land a few hundred ns off; splitting whole and
    fractional milliseconds keeps the error below 1 ns, far below the spacing of the floats.
    """
    ms = np.asarray(values, dtype=np.float64)
    whole = np.floor(ms)
    ns = whole.astype(np.int64) * _NS_PER_MS + np.rint((ms - whole) * _NS_PER_MS).astype(np.int64)
    return ns.view("M8[ns]")


def _datetime_to_ms(ns: np.ndarray) -> np.ndarray:
    """int64 nanoseconds → float milliseconds (inverse of :func:`_ms_to_datetime`)."""
    whole, frac = np.divmod(ns, _NS_PER_MS)
    return whole.astype(np.float64) + frac.astype(np.float64) / _NS_PER_MS


def _numbers(arr: Any) -> Any:
    """Convex numbers: whole ones (120.0 from a CSV) as numpy ``int64``, shown as 120, which
    goes back as the same Float64 (a plain int is a JS number); others stay ``float64``."""
    if arr.size and np.isfinite(arr).all() and (np.abs(arr) < 2**53).all() and (arr == np.rint(arr)).all() \
            and not (np.signbit(arr) & (arr == 0)).any():
        return arr.astype(np.int64)
    return arr


def _object_array(values: Sequence[Any], missing_as: Any = pd.NA) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    for i, x in enumerate(values):  # element-wise: numpy would unpack nested lists
        arr[i] = missing_as if x is MISSING else x
    return arr


def _column(name: str, values: Sequence[Any]) -> Any:
    """One column of documents' values (``MISSING`` for absent fields) as a pandas array."""
    types = set(map(type, values))
    has_missing = _Missing in types
    types.discard(_Missing)
    n = len(values)
    if name == "_creationTime" and types <= {float} and not has_missing and n:
        return pd.DatetimeIndex(_ms_to_datetime(values)).tz_localize("UTC").array
    if not types:  # every value missing
        return pd.array([pd.NA] * n, dtype=object)
    if len(types) == 1:
        (t,) = types
        if not has_missing:
            if t is float:
                return _numbers(np.array(values, dtype=np.float64))
            if t is bool:
                return np.array(values, dtype=bool)
            if t is Int64:
                return pd.array(np.array(values, dtype=np.int64), dtype="Int64")
            if t is str:
                return pd.array(values, dtype="str")
        else:
            mask = np.fromiter((x is MISSING for x in values), dtype=bool, count=n)
            if t is float:
                data = np.array([0.0 if x is MISSING else x for x in values], dtype=np.float64)
                return pd.arrays.FloatingArray(data, mask)
            if t is bool:
                data = np.array([False if x is MISSING else x for x in values], dtype=bool)
                return pd.arrays.BooleanArray(data, mask)
            if t is Int64:
                data = np.array([0 if x is MISSING else x for x in values], dtype=np.int64)
                return pd.arrays.IntegerArray(data, mask)
            if t is str:
                return pd.array(_object_array(values), dtype=pd.StringDtype(na_value=pd.NA))
    return _object_array(values)


def _frame(columns: Mapping[str, Any], n: int, index: str | None = None) -> pd.DataFrame:
    """A frame of columns given as values (``MISSING`` for absent) or as built pandas arrays."""
    data = {name: _column(name, values) if isinstance(values, list) else values for name, values in columns.items()}
    df = pd.DataFrame(data, index=pd.RangeIndex(n), columns=list(columns))
    if index is not None:
        if index not in df.columns:
            raise KeyError(f"Cannot index by {index!r}: there is no such column")
        df = df.set_index(index)
    return df


def _ordered_names(names: Iterable[str]) -> list[str]:
    names = list(names)
    head = [f for f in SYSTEM_FIELDS if f in names]
    return head + [f for f in names if f not in SYSTEM_FIELDS]


class _Columns:
    """Accumulates documents column-wise (a field first seen late is MISSING before)."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {}
        self.n = 0

    def add(self, docs: list[dict[str, Any]]) -> None:
        if not docs:
            return
        columns, n, m = self.columns, self.n, len(docs)
        keys = list(docs[0])
        uniform = set(map(len, docs)) == {len(keys)}
        if uniform:  # the common case: every document has the same fields (checked below)
            try:
                values = [list(map(itemgetter(key), docs)) for key in keys]
            except KeyError:
                uniform = False
        if uniform:
            for key, vals in zip(keys, values):
                col = columns.get(key)
                if col is None:
                    col = columns[key] = [MISSING] * n
                col.extend(vals)
            for col in columns.values():
                if len(col) < n + m:
                    col.extend([MISSING] * (n + m - len(col)))
        else:
            for d in docs:
                for key in d:
                    if key not in columns:
                        columns[key] = [MISSING] * n
            for key, col in columns.items():
                col.extend([d.get(key, MISSING) for d in docs])
        self.n = n + m

    def frame(self, index: str | None = None) -> pd.DataFrame:
        ordered = {k: self.columns[k] for k in _ordered_names(self.columns)}
        return _frame(ordered, self.n, index)


def to_dataframe(docs: Iterable[Mapping[str, Any]] | Mapping[str, Any], *, index: str | None = None) -> pd.DataFrame:
    """Documents (a list of dicts, a query result, a ``paginate`` result) as a DataFrame.

    Columns: ``_id`` and ``_creationTime`` first, then fields in the order first seen.
    ``index="_id"`` makes a column the index. See the module docstring for the types.
    """
    if isinstance(docs, Mapping):
        if "page" in docs and isinstance(docs.get("page"), list) and "isDone" in docs:
            docs = docs["page"]
        else:
            docs = [docs]
    rows: list[Any] = list(docs)
    for i, d in enumerate(rows):
        if not isinstance(d, Mapping):
            raise DataFrameError(f"to_dataframe() takes documents (dicts); item {i} is a {type(d).__name__}")
    acc = _Columns()
    acc.add([d if type(d) is dict else dict(d) for d in rows])
    return acc.frame(index)


def empty_table_frame(index: str | None = None) -> pd.DataFrame:
    """The frame of a table without documents: just its system columns, typed."""
    frame = pd.DataFrame({"_id": pd.array([], dtype="str"), "_creationTime": pd.array([], dtype="datetime64[ns, UTC]")})
    if index is not None and index not in frame.columns:
        raise KeyError(f"Cannot index by {index!r}: there is no such column")
    return frame.set_index(index) if index is not None else frame


def _system_columns(ids: list[str], times: bytes) -> tuple[Any, Any]:
    """The ``_id`` and ``_creationTime`` columns from the documents' ids and the order bytes
    of their creation times (``engine.stored``: a float's key is its bits, the sign bit set
    for positives, all bits flipped for negatives)."""
    order = np.frombuffer(times, dtype=">u8").astype(np.uint64)
    sign = np.uint64(1 << 63)
    bits = np.where(order & sign, order ^ sign, ~order)
    column = pd.DatetimeIndex(_ms_to_datetime(bits.view(np.float64))).tz_localize("UTC").array
    return pd.array(ids, dtype="str"), column


def _decode_array(text: str) -> list[dict[str, Any]]:
    """A JSON array of stored documents: orjson when it takes the text, else json (the
    reference: orjson refuses some text json accepts, such as numbers beyond float range)."""
    if _orjson_loads is not None:
        try:
            return _orjson_loads(text)
        except ValueError:
            pass
    return _decode(text)


def table_dataframe(app: Deployment, table: str, *, index: str | None = None, at: Any = None) -> pd.DataFrame:
    """Every document of ``table`` as a DataFrame, in ``_creationTime`` order (one snapshot;
    ``at``: the snapshot at that time, as ``app.query(..., at=)`` takes it)."""
    acc = _Columns()
    ids: list[str] = []
    times: list[bytes] = []
    decoded: list[dict[str, Any]] = []
    for batch in app.read_table(table, at=at):
        if batch.documents is not None:
            decoded.extend(batch.documents)
            continue
        # Documents come joined by SQLite, one JSON array per batch: no Python string per
        # row. Special ones ($integer, $bytes, NaN...) are decoded further one by one.
        docs = _decode_array("[" + batch.json + "]")
        if "0" in batch.plain:
            docs = [d if flag == "1" else _from_stored(d) for d, flag in zip(docs, batch.plain)]
        acc.add(docs)
        ids.extend(batch.ids.split(","))
        times.append(batch.times)
    if decoded:
        return to_dataframe(decoded, index=index)
    if acc.n == 0:
        return empty_table_frame(index)
    id_column, time_column = _system_columns(ids, b"".join(times))
    columns: dict[str, Any] = {"_id": id_column, "_creationTime": time_column}
    columns.update((name, values) for name, values in acc.columns.items() if name not in columns)
    return _frame(columns, acc.n, index)


def dataframe(
    app: Deployment, source: Any, args: Mapping[str, Any] | None = None, *, index: str | None = None, at: Any = None
) -> pd.DataFrame:
    """``app.df(...)``: a table name, a query's path (with ``args``), or documents; ``at``
    reads a table or query as it was then."""
    from ..backend.registry import FunctionNotFound

    if isinstance(source, str):
        try:
            tables = app.table_names()
        except PermissionError:  # a remote deployment without its admin key: queries only
            tables = []
        if source in tables:
            if args is not None:
                raise DataFrameError(f"app.df({source!r}, args): {source!r} is a table, not a query function")
            return table_dataframe(app, source, index=index, at=at)
        if source.startswith("_") and ":" not in source:
            raise DataFrameError(
                f"app.df({source!r}): {source!r} is a system table, which app.df does not read: "
                f"pass its documents, e.g. app.df(app.run(lambda ctx: ctx.db.system.query({source!r}).collect()))"
            )
        # Arguments that are not a dict go as they are: the query's validation names them.
        query_args = dict(args) if isinstance(args, Mapping) else ({} if args is None else args)
        try:
            result = app.query(source, query_args, at=at)
        except FunctionNotFound:
            if args is not None or not _may_be_table(source):
                raise  # a query's path (or no name at all): not a table to come
            return empty_table_frame(index)  # a table without documents yet
        return to_dataframe(result, index=index)
    if at is not None:
        raise DataFrameError("app.df(..., at=) reads a table or a query as it was: pass its name")
    if isinstance(source, pd.DataFrame):
        return source
    if not isinstance(source, (Iterable, Mapping)):
        raise DataFrameError(
            f"app.df() takes a table name, a query's path or documents (a list of dicts), got {type(source).__name__}"
        )
    return to_dataframe(source, index=index)


def _may_be_table(name: str) -> bool:
    """Whether ``name`` could be a user table's (``tasks``, a component's ``mount/table``)."""
    parts = name.split("/")
    return len(parts) <= 2 and all(is_identifier(part) and not part.startswith("_") for part in parts)


# ---------------------------------------------------------------------------------------------
# DataFrame → documents


def _unsupported(name: str, dtype: Any, hint: str = "") -> DataFrameError:
    return DataFrameError(f"Column {name!r} has dtype {dtype}, which has no Convex type{hint}")


def _py(x: Any, name: str, nan: NanPolicy, depth: int = 0) -> Any:
    """One object-column value as a Convex value (``MISSING`` for pandas' missing markers)."""
    t = type(x)
    if t is str or t is bool or x is None or t is bytes or t is Int64:
        return x
    if t is float:
        if math.isnan(x) and nan != "keep":
            return MISSING if nan == "missing" else None
        return x
    if t is int:
        return x  # checked (±2^53) when written
    if x is pd.NA or x is pd.NaT:
        return MISSING
    if t is list or t is tuple:
        return [_py(e, name, "keep", depth + 1) for e in x]
    if t is dict:
        return {k: _py(e, name, "keep", depth + 1) for k, e in x.items()}
    if isinstance(x, np.generic):
        if isinstance(x, np.bool_):
            return bool(x)
        if isinstance(x, np.integer):
            return int(x)
        if isinstance(x, np.floating):
            return _py(float(x), name, nan, depth)
        if isinstance(x, np.datetime64):
            return _py(pd.Timestamp(x), name, nan, depth)
        if isinstance(x, np.str_):
            return str(x)
        if isinstance(x, np.bytes_):
            return bytes(x)
    if isinstance(x, np.ndarray):
        return [_py(e, name, "keep", depth + 1) for e in x.tolist()]
    if isinstance(x, pd.Timestamp):
        if x.tzinfo is None:
            x = x.tz_localize("UTC")
        return float(_datetime_to_ms(np.array([x.value], dtype=np.int64))[0])
    if isinstance(x, pd.Timedelta):
        return float(_datetime_to_ms(np.array([x.value], dtype=np.int64))[0])
    if isinstance(x, (bytearray, memoryview)):
        return bytes(x)
    if isinstance(x, Mapping):
        return {k: _py(e, name, "keep", depth + 1) for k, e in x.items()}
    return x  # anything else is checked (and rejected with a clear error) when written


def _series_values(name: str, s: pd.Series, nan: NanPolicy) -> list[Any]:
    """A column's values as Convex values, ``MISSING`` where the field is to be absent."""
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return [_py(x, name, "missing") for x in s.astype(object).tolist()]
    if isinstance(dtype, pd.DatetimeTZDtype) or (isinstance(dtype, np.dtype) and dtype.kind in "mM"):
        if isinstance(dtype, pd.DatetimeTZDtype):
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        mask = s.isna().to_numpy()
        ns = s.astype("m8[ns]" if s.dtype.kind == "m" else "M8[ns]").to_numpy().view(np.int64)
        out = _datetime_to_ms(ns).tolist()
        if mask.any():
            for i in np.flatnonzero(mask).tolist():
                out[i] = MISSING
        return out
    if isinstance(dtype, np.dtype):
        kind = dtype.kind
        if kind == "f":
            out = s.to_numpy(dtype=np.float64).tolist()
            if nan != "keep":
                repl = MISSING if nan == "missing" else None
                out = [repl if isinstance(x, float) and math.isnan(x) else x for x in out]
            return out
        if kind == "b":
            return s.tolist()
        if kind in "iu":
            arr = s.to_numpy()
            if len(arr) and (int(arr.max()) > MAX_SAFE_INT or int(arr.min()) < -MAX_SAFE_INT):
                # Int64 is the way out only for values it can hold (a uint64 past 2^63 is not).
                fix = (
                    f"convert it with df.astype({{{name!r}: 'Int64'}}) to store Convex Int64 values"
                    if int(arr.max()) <= INT64_MAX
                    else "Convex has no integer type past 2^63 - 1: store it as a string"
                )
                raise DataFrameError(
                    f"Column {name!r} holds integers beyond ±2^53, which a Convex number (Float64) "
                    f"cannot represent exactly: {fix}"
                )
            return arr.astype(np.float64).tolist()
        if kind == "O":
            return [_py(x, name, nan) for x in s.tolist()]
        if kind in "SU":
            return [_py(x, name, nan) for x in s.tolist()]
        raise _unsupported(name, dtype)
    # pandas extension dtypes
    mask = s.isna().to_numpy()
    if isinstance(dtype, (pd.StringDtype, pd.BooleanDtype)):
        out = s.to_numpy(dtype=object, na_value=None).tolist()
    elif pd.api.types.is_integer_dtype(dtype):
        valid = s.dropna()
        if len(valid) and int(valid.max()) > INT64_MAX:
            raise DataFrameError(f"Column {name!r} holds integers beyond Int64's range")
        ints = s.to_numpy(dtype=object, na_value=None).tolist()
        make = int.__new__
        out = [None if x is None else make(Int64, x) for x in ints]
    elif pd.api.types.is_float_dtype(dtype):
        # A FloatingArray keeps NaN (a value) apart from NA (missing).
        out = s.to_numpy(dtype=object, na_value=None).tolist()
        out = [float(x) if x is not None else None for x in out]
        if nan != "keep":
            repl = MISSING if nan == "missing" else None
            out = [repl if isinstance(x, float) and math.isnan(x) else x for x in out]
    elif isinstance(dtype, pd.ArrowDtype) or dtype == object:
        out = [_py(x, name, nan) for x in s.to_numpy(dtype=object).tolist()]
        mask = np.zeros(len(out), dtype=bool)
    else:
        raise _unsupported(name, dtype, "; convert the column first (e.g. .astype(object))")
    if mask.any():
        for i in np.flatnonzero(mask).tolist():
            out[i] = MISSING
    return out


def _frame_columns(df: pd.DataFrame, nan: NanPolicy) -> tuple[list[str], list[list[Any]]]:
    if not isinstance(df, pd.DataFrame):
        raise DataFrameError(f"Expected a pandas DataFrame, got {type(df).__name__}")
    names: list[str] = []
    columns: list[list[Any]] = []
    if df.index.name == "_id" and "_id" not in df.columns:
        names.append("_id")
        columns.append(_series_values("_id", df.index.to_series(), "missing"))
    if not df.columns.is_unique:
        dup = df.columns[df.columns.duplicated()].tolist()
        raise DataFrameError(f"Duplicate column names: {dup}")
    for name in df.columns:
        if not isinstance(name, str):
            raise DataFrameError(
                f"Column names become field names and must be strings, got {name!r}: "
                "rename them, e.g. df.columns = df.columns.astype(str)"
            )
        s = df[name]
        if name == "_creationTime" and pd.api.types.is_float_dtype(s.dtype):
            values = _series_values(name, s, "missing")
        else:
            values = _series_values(name, s, nan)
        names.append(name)
        columns.append(values)
    return names, columns


def _rows(names: list[str], columns: list[list[Any]], n: int) -> list[dict[str, Any]]:
    """Documents from columns; fields whose value is ``MISSING`` are left out."""
    if not names:
        return [{} for _ in range(n)]
    sparse = [any(x is MISSING for x in col) for col in columns]
    if not any(sparse):
        return [dict(zip(names, values)) for values in zip(*columns)]
    return [{k: x for k, x in zip(names, values) if x is not MISSING} for values in zip(*columns)]


def from_dataframe(df: pd.DataFrame, *, nan: NanPolicy = "keep") -> list[dict[str, Any]]:
    """The rows of ``df`` as documents (dicts), leaving out each row's missing fields.

    ``_id``/``_creationTime`` columns (or an index named ``_id``) are kept: ``_creationTime``
    datetimes become float milliseconds again. ``nan``: what a float ``NaN`` in a float or
    object column is: ``"keep"`` (the Float64 NaN), ``"missing"`` or ``"null"``.
    """
    _check_nan(nan)
    names, columns = _frame_columns(df, nan)
    return _rows(names, columns, len(df))


def _check_nan(nan: Any) -> None:
    """``nan=`` is one of the three policies (any other string would read NaN as null)."""
    if nan not in ("keep", "missing", "null"):
        raise DataFrameError(f"nan= takes 'keep', 'missing' or 'null', got {nan!r}")


def _check_flag(name: str, value: Any) -> None:
    """A yes/no option is True, False or None (its default): a string such as "no" would
    otherwise count as True."""
    if value is not None and not isinstance(value, (bool, np.bool_)):
        raise DataFrameError(f"{name}= takes True, False or None, got {value!r}")


# ---------------------------------------------------------------------------------------------
# import


class _Progress:
    """tqdm.auto when installed, else a one-line text bar on stderr; nothing when disabled."""

    def __init__(self, total: int, label: str, enabled: bool) -> None:
        self.total, self.done, self.label = total, 0, label
        self.bar: Any = None
        self.enabled = enabled
        self.started = time.perf_counter()
        self.last = 0.0
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, desc=label, unit="rows", unit_scale=True)

    def update(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.perf_counter()
        if now - self.last >= 0.2 or self.done >= self.total:
            self.last = now
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            rate = self.done / max(now - self.started, 1e-9)
            sys.stderr.write(
                f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                f"{self.done:,}/{self.total:,} rows ({rate:,.0f}/s)"
            )
            sys.stderr.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.close()
        else:
            sys.stderr.write("\n")
            sys.stderr.flush()


def import_dataframe(
    app: Deployment,
    table: str,
    df: pd.DataFrame,
    *,
    mode: ImportMode = "insert",
    batch_size: int = 50_000,
    atomic: bool | None = None,
    keep_ids: bool | None = None,
    nan: NanPolicy = "keep",
    progress: bool | None = None,
) -> int:
    """Write the rows of ``df`` as documents of ``table``; return how many.

    ``mode``: ``"insert"`` (the default, as ``npx convex import``) refuses a table that already
    has documents; ``"append"`` adds to it; ``"replace"`` deletes its documents first.
    ``atomic`` (default: True, except for append): one transaction for the whole import, so
    nothing is written unless every row is, and queries never see part of it. Non-atomic
    imports commit every ``batch_size`` rows (live queries see whole batches), so a bad row
    leaves the batches before it written; ``replace`` is always atomic.
    ``keep_ids`` (default: when there is an ``_id`` column): keep ``_id`` and
    ``_creationTime`` (ids must be ids of this table, e.g. from ``app.df(table)``);
    ``False`` drops those columns and assigns new ones. ``progress``: show a progress bar
    (default: for frames of 100,000 rows or more).
    Rows are validated like ``db.insert`` (field names, values, the schema), and indexes updated.
    """
    if mode not in ("insert", "replace", "append"):
        raise DataFrameError(f"mode= takes 'insert', 'replace' or 'append', got {mode!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise DataFrameError(f"batch_size must be a positive integer, got {batch_size!r}")
    _check_nan(nan)
    for option, value in (("atomic", atomic), ("keep_ids", keep_ids), ("progress", progress)):
        _check_flag(option, value)
    if atomic is None:
        atomic = mode != "append"
    if mode == "replace":
        atomic = True
    names, columns = _frame_columns(df, nan)
    has_system = any(name in SYSTEM_FIELDS for name in names)
    if keep_ids is None:
        keep_ids = "_id" in names
    if not keep_ids and has_system:
        keep = [i for i, name in enumerate(names) if name not in SYSTEM_FIELDS]
        names = [names[i] for i in keep]
        columns = [columns[i] for i in keep]
    n = len(df)
    show = progress if progress is not None else n >= PROGRESS_THRESHOLD
    bar = _Progress(n, f"import {table}", bool(show))
    try:
        app.import_columns(table, names, columns, n, mode=mode, keep_ids=keep_ids, atomic=atomic,
                           batch_size=batch_size, progress=bar.update)
    finally:
        bar.close()
    return n


# ---------------------------------------------------------------------------------------------
# schema inference


def _value_validator(x: Any, id_table: Any) -> Validator:
    t = type(x)
    if x is None:
        return v.null()
    if t is bool:
        return v.boolean()
    if t is float or t is int:
        return v.float64()
    if t is Int64:
        return v.int64()
    if t is str:
        table = id_table(x) if id_table is not None and is_id(x) else None
        return v.id(table) if table else v.string()
    if t is bytes:
        return v.bytes()
    if t is list:
        return v.array(_union([_value_validator(e, id_table) for e in x]) if x else v.any())
    if t is dict:
        return _object_validator([x], id_table)
    return v.any()


def _object_validator(objs: list[dict], id_table: Any) -> Validator:
    fields: dict[str, list[Any]] = {}
    for o in objs:
        for k in o:
            fields.setdefault(k, [])
    for k, vals in fields.items():
        for o in objs:
            vals.append(o.get(k, MISSING))
    return v.object({k: _field_validator(vals, id_table) for k, vals in fields.items()})


def _union(validators: list[Validator]) -> Validator:
    unique: list[Validator] = []
    objects = [x for x in validators if isinstance(x, ObjectValidator)]
    for x in validators:
        if x not in unique and (not isinstance(x, ObjectValidator) or len(objects) == 1):
            unique.append(x)
    if len(objects) > 1:
        unique.append(objects[0] if all(o == objects[0] for o in objects) else v.any())
    if any(isinstance(x, AnyValidator) for x in unique):
        return v.any()
    if len(unique) == 1:
        return unique[0]
    return v.union(*unique)


def _field_validator(values: Sequence[Any], id_table: Any) -> Validator:
    present = [x for x in values if x is not MISSING]
    optional = len(present) < len(values)
    if not present:
        return v.optional(v.any())
    dicts = [x for x in present if type(x) is dict]
    others = [x for x in present if type(x) is not dict]
    validators: list[Validator] = []
    seen: set[tuple] = set()
    for x in others:
        key = (type(x), id_table(x) if type(x) is str and id_table is not None and is_id(x) else None)
        if type(x) is list:
            validators.append(_value_validator(x, id_table))
        elif key not in seen:
            seen.add(key)
            validators.append(_value_validator(x, id_table))
    if dicts:
        validators.append(_object_validator(dicts, id_table))
    result = _union(validators)
    return v.optional(result) if optional else result


def infer_schema(df: pd.DataFrame, *, id_table: Any = None) -> TableDefinition:
    """A ``define_table(...)`` that the rows of ``df`` satisfy (system columns left out).

    Columns with missing values become ``v.optional``; ``None`` adds ``v.null()``; columns of
    mixed types become unions. ``id_table`` (``app.infer_schema`` passes the app's) turns
    string columns of document ids into ``v.id(table)``.
    """
    names, columns = _frame_columns(df, "keep")
    fields: dict[str, Validator] = {}
    for name, values in zip(names, columns):
        if name in SYSTEM_FIELDS:
            continue
        fields[name] = _fast_field_validator(df[name].dtype, values, id_table)
    return define_table(fields)


def _fast_field_validator(dtype: Any, values: list[Any], id_table: Any) -> Validator:
    optional = any(x is MISSING for x in values)
    base: Validator | None = None
    if isinstance(dtype, np.dtype) and dtype.kind in "fbiumM":
        base = v.boolean() if dtype.kind == "b" else v.float64()
    elif pd.api.types.is_bool_dtype(dtype):
        base = v.boolean()
    elif pd.api.types.is_integer_dtype(dtype):
        base = v.int64()
    elif pd.api.types.is_float_dtype(dtype) or isinstance(dtype, pd.DatetimeTZDtype):
        base = v.float64()
    elif isinstance(dtype, pd.StringDtype) and id_table is None:
        base = v.string()
    if base is None:
        return _field_validator(values, id_table)
    if all(x is MISSING for x in values) and values:
        return v.optional(v.any())
    return v.optional(base) if optional else base

