"""Convex's wire protocol as data: parsing client messages, building server messages.

No I/O here (the sync session and the HTTP handlers do that). Everything follows
``PROTOCOL.md``: timestamps are u64 little-endian in base64, arguments arrive as ``[obj]``
(sync protocol, JS HTTP client) or as ``obj`` (Python HTTP client, ``/api/run``), values are
``convex_encoded_json`` and every response carries ``logLines``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConvexError, InvalidValueError
from ..values import from_json, to_clean_json, to_json

__all__ = [
    "ActionRequest",
    "Authenticate",
    "ClientMessage",
    "Connect",
    "Event",
    "ModifyQuerySet",
    "MutationRequest",
    "ProtocolError",
    "QueryAdd",
    "QueryRemove",
    "StateVersion",
    "action_response",
    "auth_error",
    "decode_args",
    "decode_ts",
    "dumps",
    "encode_ts",
    "encoder_for",
    "error_fields",
    "fatal_error",
    "loads",
    "mutation_response",
    "parse_client_message",
    "ping",
    "query_failed",
    "query_removed",
    "query_updated",
    "transition",
]

_MAX_SAFE_INT = 2**53
_pack_u64 = struct.Struct("<Q").pack
_unpack_u64 = struct.Struct("<Q").unpack

_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"), ensure_ascii=False)


def dumps(message: Any) -> str:
    """Compact JSON text of a message (never bare NaN/Infinity: values are encoded first)."""
    return _ENCODER.encode(message)


class ProtocolError(ValueError):
    """A client message that breaks the protocol: the connection is closed with this reason."""

    def __init__(self, message: str, code: str = "BadClientMessage") -> None:
        super().__init__(message)
        self.code = code

    @property
    def reason(self) -> str:
        return f"{self.code}: {self}"


# -- timestamps ------------------------------------------------------------------------------


def encode_ts(ts: int) -> str:
    """``ts`` (ns) as the protocol writes it: base64 of 8 bytes, little-endian."""
    return base64.b64encode(_pack_u64(ts)).decode("ascii")


def decode_ts(text: Any, what: str = "timestamp") -> int:
    if not isinstance(text, str):
        raise ProtocolError(f"{what} must be a base64 string, got {type(text).__name__}")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"{what} is not valid base64: {text[:40]!r}") from None
    if len(raw) != 8:
        raise ProtocolError(f"{what} must be 8 bytes, got {len(raw)}")
    return _unpack_u64(raw)[0]


@dataclass(frozen=True)
class StateVersion:
    """A sync state: query set version, identity version, timestamp."""

    query_set: int = 0
    identity: int = 0
    ts: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"querySet": self.query_set, "identity": self.identity, "ts": encode_ts(self.ts)}


# -- values and arguments --------------------------------------------------------------------


def decode_args(raw: Any) -> dict:
    """A call's arguments: ``[obj]`` or ``obj`` (or nothing) → a dict of Convex values.

    Raises :class:`InvalidValueError` for anything that is not one object of Convex values.
    """
    if raw is None:
        return {}
    if isinstance(raw, list):
        if len(raw) != 1:
            raise InvalidValueError(
                f"Arguments must be an array holding one object, got an array of {len(raw)} items"
            )
        raw = raw[0]
    if not isinstance(raw, dict):
        raise InvalidValueError(f"Arguments must be an object, got {_json_type(raw)}")
    value = from_json(raw)
    if not isinstance(value, dict):  # e.g. {"$integer": ...}: a value, not an object of arguments
        raise InvalidValueError(f"Arguments must be an object, got {type(value).__name__}")
    return value


def _json_type(x: Any) -> str:
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "a boolean"
    if isinstance(x, (int, float)):
        return "a number"
    if isinstance(x, str):
        return "a string"
    if isinstance(x, list):
        return "an array"
    return type(x).__name__


FORMATS = {
    "convex_encoded_json": "encoded",
    "convex_json": "encoded",
    "json": "clean",
    "convex_clean_json": "clean",
}


def encoder_for(fmt: str | None, default: str = "json") -> Any:
    """The value encoder of a ``format`` field (``to_json`` or ``to_clean_json``)."""
    name = FORMATS.get(fmt if fmt is not None else default)
    if name is None:
        raise ProtocolError(
            f"Unsupported format {fmt!r}: use 'convex_encoded_json' or 'json'", code="BadFormat"
        )
    return to_json if name == "encoded" else to_clean_json


def error_fields(exc: BaseException, encode: Any = to_json) -> tuple[str, Any, bool]:
    """``(errorMessage, errorData, has_data)`` of a function's error, as Convex reports it."""
    if isinstance(exc, ConvexError):
        data = exc.data
        try:
            encoded = encode(data)
            shown = data if isinstance(data, str) else dumps(to_json(data))
        except Exception:  # noqa: BLE001 - data that is not a Convex value: report it as text
            encoded = shown = repr(data)
        return f"Uncaught ConvexError: {shown}", encoded, True
    return str(exc) or type(exc).__name__, None, False


# -- client messages -------------------------------------------------------------------------


def loads(text: str | bytes, what: str = "Message") -> Any:
    """JSON text → Python; :class:`ProtocolError` naming what is wrong, including nesting too
    deep for the parser (a RecursionError is never let through)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ProtocolError(f"{what} is JSON nested too deeply to parse") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"{what} is not valid JSON: {exc}") from None


@dataclass
class Connect:
    session_id: str
    connection_count: int = 0
    last_close_reason: str | None = None
    max_observed_ts: int | None = None
    client_ts: float | None = None


@dataclass
class QueryAdd:
    query_id: int
    udf_path: str
    args: Any  # raw JSON; decoded by the session so that a bad value fails only this query
    journal: str | None = None


@dataclass
class QueryRemove:
    query_id: int


@dataclass
class ModifyQuerySet:
    base_version: int
    new_version: int
    modifications: list[QueryAdd | QueryRemove] = field(default_factory=list)


@dataclass
class MutationRequest:
    request_id: int
    udf_path: str
    args: Any


@dataclass
class ActionRequest:
    request_id: int
    udf_path: str
    args: Any


@dataclass
class Authenticate:
    base_version: int
    token_type: str  # "User" | "Admin" | "None"
    value: str | None = None
    impersonating: dict | None = None


@dataclass
class Event:
    event_type: str
    event: Any = None


ClientMessage = Connect | ModifyQuerySet | MutationRequest | ActionRequest | Authenticate | Event


def _int(msg: dict, key: str, *, optional: bool = False) -> int | None:
    value = msg.get(key)
    if value is None:
        if optional:
            return None
        raise ProtocolError(f"{msg.get('type', 'message')} is missing {key!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError(f"{key!r} must be a number, got {_json_type(value)}")
    if isinstance(value, float):
        if not value.is_integer():
            raise ProtocolError(f"{key!r} must be a whole number, got {value!r}")
        value = int(value)
    if not 0 <= value <= _MAX_SAFE_INT:
        raise ProtocolError(f"{key!r} is out of range: {value}")
    return value


def _str(msg: dict, key: str, *, optional: bool = False) -> str | None:
    value = msg.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"{msg.get('type', 'message')}.{key} must be a string, got {_json_type(value)}")
    return value


def _udf_path(msg: dict) -> str:
    path = _str(msg, "udfPath")
    assert path is not None
    if not path or len(path) > 1024:
        raise ProtocolError("udfPath must be a non-empty string of at most 1024 characters")
    return with_component(msg.get("componentPath"), path)


def with_component(component: Any, path: str) -> str:
    """A function of a mounted component (``componentPath``): its path ``mount:module:fn``,
    which only admins reach (backend/components.py)."""
    if not component:
        return path
    if not isinstance(component, str) or not _COMPONENT.match(component):
        raise ProtocolError(f"componentPath must be a mounted component's name, got {component!r}")
    module, _, fn = path.partition(":")
    module = module.removesuffix(".js")
    return f"{component}:{module}:{fn or 'default'}"


_COMPONENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def parse_client_message(text: str | bytes) -> ClientMessage:
    """Parse one frame from a client; :class:`ProtocolError` says what is wrong with it."""
    msg = loads(text, "Message")
    if not isinstance(msg, dict):
        raise ProtocolError(f"Message must be a JSON object, got {_json_type(msg)}")
    kind = msg.get("type")
    if kind == "Connect":
        session_id = _str(msg, "sessionId")
        assert session_id is not None
        if not session_id or len(session_id) > 256:
            raise ProtocolError("Connect.sessionId must be a non-empty string of at most 256 characters")
        observed = msg.get("maxObservedTimestamp")
        client_ts = msg.get("clientTs")
        return Connect(
            session_id=session_id,
            connection_count=_int(msg, "connectionCount", optional=True) or 0,
            last_close_reason=msg.get("lastCloseReason") if isinstance(msg.get("lastCloseReason"), str) else None,
            max_observed_ts=decode_ts(observed, "maxObservedTimestamp") if observed is not None else None,
            client_ts=float(client_ts) if isinstance(client_ts, (int, float)) and not isinstance(client_ts, bool) else None,
        )
    if kind == "ModifyQuerySet":
        base, new = _int(msg, "baseVersion"), _int(msg, "newVersion")
        assert base is not None and new is not None
        mods_raw = msg.get("modifications")
        if not isinstance(mods_raw, list):
            raise ProtocolError("ModifyQuerySet.modifications must be an array")
        mods: list[QueryAdd | QueryRemove] = []
        for m in mods_raw:
            if not isinstance(m, dict):
                raise ProtocolError("Each query set modification must be an object")
            mtype = m.get("type")
            qid = _int(m, "queryId")
            assert qid is not None
            if mtype == "Add":
                journal = m.get("journal")
                if journal is not None and not isinstance(journal, str):
                    raise ProtocolError("Add.journal must be a string or null")
                mods.append(QueryAdd(qid, _udf_path(m), m.get("args"), journal))
            elif mtype == "Remove":
                mods.append(QueryRemove(qid))
            else:
                raise ProtocolError(f"Unknown query set modification type {mtype!r}")
        return ModifyQuerySet(base, new, mods)
    if kind in ("Mutation", "Action"):
        rid = _int(msg, "requestId")
        assert rid is not None
        cls = MutationRequest if kind == "Mutation" else ActionRequest
        return cls(rid, _udf_path(msg), msg.get("args"))
    if kind == "Authenticate":
        base = _int(msg, "baseVersion")
        assert base is not None
        token_type = msg.get("tokenType")
        if token_type not in ("User", "Admin", "None"):
            raise ProtocolError(f"Authenticate.tokenType must be 'User', 'Admin' or 'None', got {token_type!r}")
        value = _str(msg, "value", optional=True) if token_type != "None" else None
        if token_type != "None" and not value:
            raise ProtocolError(f"Authenticate with tokenType {token_type!r} needs a value")
        acting = msg.get("impersonating", msg.get("acting_as"))
        if acting is not None and not isinstance(acting, dict):
            raise ProtocolError("Authenticate.impersonating must be an object")
        return Authenticate(base, token_type, value, acting)
    if kind == "Event":
        return Event(str(msg.get("eventType")), msg.get("event"))
    if kind is None:
        raise ProtocolError("Message has no 'type'")
    raise ProtocolError(f"Unknown message type {str(kind)[:64]!r}")


# -- server messages -------------------------------------------------------------------------


def query_updated(query_id: int, value_json: Any, log_lines: list[str], journal: str | None) -> dict:
    return {"type": "QueryUpdated", "queryId": query_id, "value": value_json, "logLines": log_lines, "journal": journal}


def query_failed(query_id: int, error: BaseException, log_lines: list[str], journal: str | None) -> dict:
    message, data, has_data = error_fields(error)
    out = {"type": "QueryFailed", "queryId": query_id, "errorMessage": message, "logLines": log_lines, "journal": journal}
    if has_data:
        out["errorData"] = data
    return out


def query_removed(query_id: int) -> dict:
    return {"type": "QueryRemoved", "queryId": query_id}


def transition(start: StateVersion, end: StateVersion, modifications: list[dict], server_ts: int | None = None) -> dict:
    out: dict[str, Any] = {
        "type": "Transition",
        "startVersion": start.to_json(),
        "endVersion": end.to_json(),
        "modifications": modifications,
    }
    if server_ts is not None:
        out["serverTs"] = server_ts
    return out


def mutation_response(
    request_id: int, *, value_json: Any = None, error: BaseException | None = None, ts: int | None, log_lines: list[str]
) -> dict:
    if error is None:
        return {
            "type": "MutationResponse", "requestId": request_id, "success": True, "result": value_json,
            "ts": encode_ts(ts or 0), "logLines": log_lines,
        }
    message, data, has_data = error_fields(error)
    out = {
        "type": "MutationResponse", "requestId": request_id, "success": False, "result": message,
        "ts": None, "logLines": log_lines,
    }
    if has_data:
        out["errorData"] = data
    return out


def action_response(request_id: int, *, value_json: Any = None, error: BaseException | None = None, log_lines: list[str]) -> dict:
    if error is None:
        return {"type": "ActionResponse", "requestId": request_id, "success": True, "result": value_json, "logLines": log_lines}
    message, data, has_data = error_fields(error)
    out = {"type": "ActionResponse", "requestId": request_id, "success": False, "result": message, "logLines": log_lines}
    if has_data:
        out["errorData"] = data
    return out


def auth_error(message: str, base_version: int, attempted: bool = True) -> dict:
    return {"type": "AuthError", "error": message, "baseVersion": base_version, "authUpdateAttempted": attempted}


def fatal_error(message: str) -> dict:
    return {"type": "FatalError", "error": message}


def ping() -> dict:
    return {"type": "Ping"}
