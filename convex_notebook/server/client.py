"""The remote deployment client: a Backend's calling and subscribing API over the network.

    remote = cn.connect("http://127.0.0.1:3210", admin_key=...)
    remote.mutation("tasks:add", {"text": "hi"})     # returns once this client's subscriptions show it
    sub = remote.subscribe("tasks:list", {})          # .value, iteration, async for, on_update, unsubscribe()
    remote.run("tasks:purge", {})                     # admin call (internal functions too)

Everything goes over one WebSocket speaking Convex's sync protocol (``PROTOCOL.md`` §3), on
a background thread with its own event loop; the connection is re-opened with backoff when
it drops, the query set is replayed and unfinished mutations are re-sent with the same
(sessionId, requestId), which the server deduplicates. ``run`` uses the HTTP API
(``/api/function`` with the admin key), then waits until this client's subscriptions have
caught up with its commit.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import uuid
from collections.abc import Callable
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

from ..backend.registry import FunctionNotFound, RegisteredFunction
from ..engine.handles import Dispatcher, LiveHandle
from ..errors import (
    ConvexError,
    ConvexFunctionError,
    InvalidValueError,
    ValidationError,
)
from ..values import convex_value, from_json, to_json
from . import protocol as P
from .remote_data import TS_HEADER, RemoteDataMixin

__all__ = ["ConnectionLost", "DeploymentClient", "RemoteSubscription"]

INACTIVITY_TIMEOUT = 60.0  # reconnect when the server sends nothing for this long (it pings every 15 s)
BACKOFF_MIN, BACKOFF_MAX = 0.1, 15.0


class ConnectionLost(ConvexFunctionError):
    """The connection dropped while an action was running (its outcome is unknown)."""


def _error_from(message: str, data: Any = None, has_data: bool = False) -> BaseException:
    """The exception a Backend would have raised for a function error reported by a server."""
    if has_data:
        try:
            return ConvexError(from_json(data))
        except InvalidValueError:
            return ConvexError(data)
    if message.startswith("Could not find"):
        return FunctionNotFound(message)
    if message.startswith(("ArgumentValidationError", "Return value validation failed")):
        return ValidationError(message)
    return ConvexFunctionError(message)


def _path_of(target: Any) -> str:
    if isinstance(target, RegisteredFunction):
        return target.path
    if isinstance(target, str) and target:
        return target
    raise TypeError(f"A function path such as 'tasks:list' is needed, got {type(target).__name__}")


def _encode_args(path: str, args: Any) -> Any:
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ValidationError(f"Arguments of {path} must be a dict of named arguments, got {type(args).__name__}")
    try:
        return to_json(convex_value(args))
    except InvalidValueError as exc:
        raise ValidationError(f"ArgumentValidationError for {path}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Subscriptions


class _Result:
    """One result of a remote query as it arrived (encoded JSON, decoded on demand)."""

    __slots__ = ("error", "fingerprint", "journal", "log_lines", "ts", "value_json")

    def __init__(self, value_json: Any, error: BaseException | None, log_lines: list[str], journal: str | None, ts: int) -> None:
        self.value_json = value_json
        self.error = error
        self.log_lines = log_lines
        self.journal = journal
        self.ts = ts
        if error is None:
            self.fingerprint: Any = ("ok", P.dumps(value_json), journal)
        else:
            self.fingerprint = ("error", type(error).__name__, str(error), journal)


class RemoteSubscription(LiveHandle):
    """A live query result from a server; the same API as :class:`~convex_notebook.Subscription`.

    ``.value`` (latest good result, a private copy), ``.error``, ``.ts``, ``.version``,
    iteration (``for v in sub``, ``async for v in sub``), ``on_update``/``on_error`` callbacks
    (run on a background thread), ``unsubscribe()``. Its results are :class:`_Result` objects
    as they arrived (values decoded on demand).
    """

    def __init__(
        self,
        client: DeploymentClient,
        path: str,
        args_json: Any,
        on_update: Callable[[Any], Any] | None,
        on_error: Callable[[BaseException], Any] | None,
    ) -> None:
        super().__init__(path, client._dispatcher, on_update, on_error)
        self._client = client
        self.key = (path, P.dumps(args_json))
        self.args_json = args_json

    def _decode(self, result: _Result) -> Any:
        return from_json(result.value_json)

    def _release(self) -> None:
        """The server forgets the query once nobody here watches it."""
        self._client._detach(self)

    def _advance(self, ts: int) -> None:
        """Same result at a newer timestamp (called by the client's loop)."""
        result = self._result
        if result is not None and ts > result.ts:
            result.ts = ts


class _Query:
    """One query in this client's query set, shared by every handle with the same key."""

    __slots__ = ("args_json", "arrived", "handles", "journal", "key", "oneshots", "path", "query_id", "result", "sent_gen")

    def __init__(self, query_id: int, path: str, args_json: Any, key: tuple, loop: asyncio.AbstractEventLoop) -> None:
        self.query_id = query_id
        self.path = path
        self.args_json = args_json
        self.key = key
        self.handles: set[RemoteSubscription] = set()
        self.oneshots = 0
        self.result: _Result | None = None
        self.arrived = asyncio.Event()
        self.journal: str | None = None
        self.sent_gen = -1  # the connection generation its Add was sent on

    def add_message(self) -> dict:
        return {"type": "Add", "queryId": self.query_id, "udfPath": self.path, "args": [self.args_json],
                "journal": self.journal}


class _Request:
    __slots__ = ("future", "log_lines", "message", "sent_gen", "status", "ts", "value_json")

    def __init__(self, message: dict, future: asyncio.Future) -> None:
        self.message = message
        self.future = future
        self.status = "requested"  # → "completed" (mutation committed, waiting for its Transition)
        self.ts = 0
        self.value_json: Any = None
        self.log_lines: list[str] = []
        self.sent_gen = -1


class _Reconnect(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------------------------------------
# The client


class DeploymentClient(RemoteDataMixin):
    """A remote deployment with the calling, subscribing and data API of :class:`Backend`
    (tables, DataFrames, live widgets, functions and logs: see ``remote_data``)."""

    def __init__(
        self,
        url: str,
        *,
        admin_key: str | None = None,
        auth: str | None = None,
        connect_timeout: float | None = 10.0,
        max_message_bytes: int = 64 * 1024 * 1024,
        _impersonate: dict | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"A deployment URL looks like http://127.0.0.1:3210, got {url!r}")
        self.url = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        self.ws_url = urlunsplit(("wss" if parts.scheme == "https" else "ws", parts.netloc, "/api/sync", "", ""))
        self.admin_key = admin_key
        self.max_message_bytes = max_message_bytes
        self._token = auth
        self._impersonate = _impersonate
        # with_identity's clients, one per identity, closed with this one.
        self._identity_clients: dict[str, DeploymentClient] = {}
        self._dispatcher = Dispatcher("convex-remote-callbacks")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="convex-remote", daemon=True)
        self._thread.start()
        self.closed = False
        # Loop-only state.
        self._session_id = str(uuid.uuid4())
        self._connection_count = 0
        self._last_close_reason = "InitialConnect"
        self._max_observed_ts = 0
        self._ws: Any = None
        self._connected = asyncio.Event()  # created on this thread: only used from the loop (3.10+)
        self._qs_version = 0
        self._id_version_sent = 0
        self._last_end = P.StateVersion()
        self._queries: dict[int, _Query] = {}
        self._by_key: dict[tuple, _Query] = {}
        self._next_query_id = 0
        self._next_request_id = 0
        self._requests: dict[int, _Request] = {}
        self._ts_waiters: list[tuple[int, asyncio.Future]] = []
        # Everything sent goes out under this lock, built from the current state while holding
        # it, so that messages leave in order and versions always follow one another.
        self._send_lock = asyncio.Lock()
        self._generation = 0  # +1 per socket
        self._removed: list[int] = []  # query ids to Remove on the current socket
        self._auth_waiter: tuple[int, asyncio.Future] | None = None
        self.last_error: str | None = None
        self._runner = asyncio.run_coroutine_threadsafe(self._run(), self._loop)
        if connect_timeout is not None:
            try:
                self._call_sync(self._wait_connected(), connect_timeout)
            except TimeoutError:
                self.close()
                raise ConnectionError(
                    f"Could not connect to {self.ws_url} within {connect_timeout} s"
                    + (f" ({self.last_error})" if self.last_error else "")
                ) from None

    def __repr__(self) -> str:
        state = "closed" if self.closed else "connected" if self.connected else "connecting"
        return f"<DeploymentClient {self.url} {state}>"

    @property
    def subscription_count(self) -> int:
        """How many live subscriptions this client holds."""
        return sum(len(query.handles) for query in list(self._queries.values()))

    @property
    def connected(self) -> bool:
        return self._ws is not None

    # -- plumbing between the caller's thread and the loop ------------------------------------
    def _call_sync(self, coro: Any, timeout: float | None = None) -> Any:
        if self.closed:
            coro.close()
            raise ConnectionError("This client is closed")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("The remote client's blocking API cannot be called from its own event loop")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    async def _call_async(self, coro: Any) -> Any:
        if self.closed:
            coro.close()
            raise ConnectionError("This client is closed")
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    async def _wait_connected(self) -> None:
        await self._connected.wait()

    # -- the connection -----------------------------------------------------------------------
    async def _run(self) -> None:
        from websockets.asyncio.client import connect as ws_connect

        backoff = BACKOFF_MIN
        while not self.closed:
            try:
                ws = await ws_connect(
                    self.ws_url, max_size=self.max_message_bytes, open_timeout=10,
                    ping_interval=20, ping_timeout=60, compression=None,
                    additional_headers={"Convex-Client": "convex-notebook"},
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - refused, DNS, handshake: try again later
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._last_close_reason = "ConnectFailed"
                await asyncio.sleep(backoff * random.uniform(0.5, 1.5))
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            reason = "ConnectionClosed"
            synced = False
            try:
                await self._open(ws)
                while True:
                    text = await asyncio.wait_for(ws.recv(), INACTIVITY_TIMEOUT)
                    if self._handle(text):
                        synced = True
            except TimeoutError:
                reason = "InactiveServer"
            except _Reconnect as exc:
                reason = exc.reason
            except asyncio.CancelledError:
                await ws.close()
                raise
            except Exception as exc:  # noqa: BLE001 - closed by the server or the network
                rcvd = getattr(exc, "rcvd", None)
                reason = (rcvd.reason if rcvd is not None and rcvd.reason else None) or type(exc).__name__
            finally:
                self._ws = None
                self._connected.clear()
            self.last_error = reason
            self._last_close_reason = reason
            try:
                await ws.close()
            except Exception:  # noqa: BLE001, S110 - the socket is gone already: nothing to close
                pass
            # Unfinished mutations stay in _requests: _open re-sends them on the next socket.
            if synced:
                backoff = BACKOFF_MIN
            if self.closed:
                return
            await asyncio.sleep(backoff * random.uniform(0.5, 1.5))
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def _open(self, ws: Any) -> None:
        """A new socket: Connect, Authenticate, the whole query set, then unfinished mutations."""
        async with self._send_lock:
            self._generation += 1
            gen = self._generation
            self._qs_version = 0
            self._id_version_sent = 0
            self._last_end = P.StateVersion()
            self._removed.clear()
            connect: dict[str, Any] = {
                "type": "Connect", "sessionId": self._session_id, "connectionCount": self._connection_count,
                "lastCloseReason": self._last_close_reason, "clientTs": 0,
            }
            if self._max_observed_ts:
                connect["maxObservedTimestamp"] = P.encode_ts(self._max_observed_ts)
            messages = [connect]
            auth = self._auth_message()
            if auth is not None:
                messages.append(auth)
            if self._queries:
                for query in self._queries.values():
                    query.sent_gen = gen
                messages.append(self._modify([q.add_message() for q in self._queries.values()]))
            for rid, req in list(self._requests.items()):
                if req.message["type"] == "Mutation":
                    req.sent_gen = gen
                    messages.append(req.message)  # the server deduplicates (sessionId, requestId)
                else:  # an action may or may not have run: don't run it twice
                    del self._requests[rid]
                    if not req.future.done():
                        req.future.set_exception(ConnectionLost("Connection lost while action was in flight"))
            self._connection_count += 1
            self._ws = ws
            for message in messages:
                await ws.send(P.dumps(message))
        self._connected.set()

    def _auth_message(self) -> dict | None:
        if self._impersonate is not None:
            message = {"type": "Authenticate", "baseVersion": self._id_version_sent, "tokenType": "Admin",
                       "value": self.admin_key, "impersonating": self._impersonate}
        elif self._token is not None:
            message = {"type": "Authenticate", "baseVersion": self._id_version_sent, "tokenType": "User",
                       "value": self._token}
        else:
            return None
        self._id_version_sent += 1
        return message

    def _modify(self, modifications: list[dict]) -> dict:
        base = self._qs_version
        self._qs_version += 1
        return {"type": "ModifyQuerySet", "baseVersion": base, "newVersion": base + 1, "modifications": modifications}

    async def _send_built(self, build: Callable[[], dict | None]) -> None:
        """Send what ``build()`` returns (None: nothing), built under the send lock."""
        async with self._send_lock:
            ws = self._ws
            if ws is None:
                return  # the state is replayed when the connection is back (_open)
            message = build()
            if message is None:
                return
            try:
                await ws.send(P.dumps(message))
            except Exception:  # noqa: BLE001, S110 - the reader notices the closed socket and reconnects
                pass

    async def _flush_query_set(self, force: bool = False) -> None:
        """Send the Adds and Removes the server hasn't seen on this socket (an empty change
        when ``force``: the server answers it with a Transition at its latest timestamp)."""

        def build() -> dict | None:
            gen = self._generation
            mods: list[dict] = [{"type": "Remove", "queryId": qid} for qid in self._removed]
            self._removed.clear()
            for query in self._queries.values():
                if query.sent_gen != gen:
                    query.sent_gen = gen
                    mods.append(query.add_message())
            if not mods and not force:
                return None
            return self._modify(mods)

        await self._send_built(build)

    async def _send_request(self, req: _Request) -> None:
        def build() -> dict | None:
            if req.sent_gen == self._generation or req.future.done():
                return None
            req.sent_gen = self._generation
            return req.message

        await self._send_built(build)

    # -- incoming messages --------------------------------------------------------------------
    def _handle(self, text: str | bytes) -> bool:
        """Apply one server message; True after a Transition (the client is in sync)."""
        try:
            msg = json.loads(text)
            kind = msg["type"]
        except (ValueError, KeyError, TypeError):
            raise _Reconnect("ServerMessageParseError") from None
        if kind == "Transition":
            self._transition(msg)
            return True
        if kind == "MutationResponse":
            self._mutation_response(msg)
        elif kind == "ActionResponse":
            req = self._requests.pop(msg["requestId"], None)
            if req is not None and not req.future.done():
                if msg["success"]:
                    req.future.set_result(msg.get("result"))
                else:
                    req.future.set_exception(_error_from(msg["result"], msg.get("errorData"), "errorData" in msg))
        elif kind == "AuthError":
            error = msg.get("error", "Authentication failed")
            self._token = None  # reconnect anonymously rather than be refused forever
            self._impersonate = None
            if self._auth_waiter is not None and not self._auth_waiter[1].done():
                from .auth import AuthenticationError

                self._auth_waiter[1].set_exception(AuthenticationError(error))
            raise _Reconnect("AuthError")
        elif kind == "FatalError":
            self.last_error = msg.get("error")
            raise _Reconnect(f"FatalError: {msg.get('error')}")
        # Ping and anything unknown: nothing to do (receiving it reset the inactivity timer).
        return False

    def _transition(self, msg: dict) -> None:
        start, end = msg["startVersion"], msg["endVersion"]
        expected = self._last_end
        if (start["querySet"], start["identity"], P.decode_ts(start["ts"])) != (
            expected.query_set, expected.identity, expected.ts,
        ):
            raise _Reconnect("StartVersionMismatch")
        end_version = P.StateVersion(end["querySet"], end["identity"], P.decode_ts(end["ts"]))
        ts = end_version.ts
        changed: list[_Query] = []
        for mod in msg["modifications"]:
            query = self._queries.get(mod.get("queryId"))
            mtype = mod.get("type")
            if query is None or mtype == "QueryRemoved":
                continue
            journal = mod.get("journal")
            if mtype == "QueryUpdated":
                result = _Result(mod["value"], None, list(mod.get("logLines") or []), journal, ts)
            elif mtype == "QueryFailed":
                error = _error_from(mod["errorMessage"], mod.get("errorData"), "errorData" in mod)
                result = _Result(None, error, list(mod.get("logLines") or []), journal, ts)
            else:
                continue
            query.journal = journal
            if query.result is not None and query.result.fingerprint == result.fingerprint:
                query.result.ts = ts  # the same result again (e.g. after a reconnect)
                continue
            query.result = result
            changed.append(query)
        self._last_end = end_version
        self._max_observed_ts = max(self._max_observed_ts, ts)
        for query in self._queries.values():
            if query.result is not None and query.result.ts < ts and query not in changed:
                query.result.ts = ts
        for query in changed:
            query.arrived.set()
            for handle in list(query.handles):
                handle._publish(query.result)  # type: ignore[arg-type]
        # Mutations committed at or before ts are now visible: they may return.
        for rid, req in list(self._requests.items()):
            if req.status == "completed" and req.ts <= ts:
                del self._requests[rid]
                if not req.future.done():
                    req.future.set_result(req.value_json)
        if self._ts_waiters:
            waiting = []
            for wanted, fut in self._ts_waiters:
                if wanted <= ts:
                    if not fut.done():
                        fut.set_result(None)
                else:
                    waiting.append((wanted, fut))
            self._ts_waiters = waiting
        if self._auth_waiter is not None and end_version.identity >= self._auth_waiter[0]:
            if not self._auth_waiter[1].done():
                self._auth_waiter[1].set_result(None)
            self._auth_waiter = None

    def _mutation_response(self, msg: dict) -> None:
        req = self._requests.get(msg["requestId"])
        if req is None or req.status == "completed":
            return  # a response to a re-sent mutation we already have
        if not msg["success"]:
            del self._requests[msg["requestId"]]
            if not req.future.done():
                req.future.set_exception(_error_from(msg["result"], msg.get("errorData"), "errorData" in msg))
            return
        ts = P.decode_ts(msg["ts"])
        self._max_observed_ts = max(self._max_observed_ts, ts)
        req.value_json = msg.get("result")
        if ts <= self._last_end.ts:
            del self._requests[msg["requestId"]]
            if not req.future.done():
                req.future.set_result(req.value_json)
            return
        req.status, req.ts = "completed", ts  # resolved by the Transition that reaches ts

    # -- requests ------------------------------------------------------------------------------
    async def _request(self, kind: str, path: str, args_json: Any) -> Any:
        rid = self._next_request_id
        self._next_request_id += 1
        message = {"type": kind, "requestId": rid, "udfPath": path, "args": [args_json]}
        req = _Request(message, self._loop.create_future())
        self._requests[rid] = req
        await self._send_request(req)
        return await req.future

    def _add_query(self, path: str, args_json: Any) -> _Query:
        key = (path, P.dumps(args_json))
        query = self._by_key.get(key)
        if query is None:
            query = _Query(self._next_query_id, path, args_json, key, self._loop)
            self._next_query_id += 1
            self._queries[query.query_id] = query
            self._by_key[key] = query
            asyncio.ensure_future(self._flush_query_set())
        return query

    def _maybe_remove(self, query: _Query) -> None:
        if query.handles or query.oneshots or self._queries.get(query.query_id) is not query:
            return
        del self._queries[query.query_id]
        del self._by_key[query.key]
        if query.sent_gen == self._generation and self._ws is not None:
            self._removed.append(query.query_id)
            asyncio.ensure_future(self._flush_query_set())

    async def _query(self, path: str, args_json: Any) -> Any:
        query = self._add_query(path, args_json)
        query.oneshots += 1
        try:
            await query.arrived.wait()
            result = query.result
        finally:
            query.oneshots -= 1
            self._maybe_remove(query)
        assert result is not None
        if result.error is not None:
            raise result.error
        return result.value_json

    async def _subscribe(self, handle: RemoteSubscription) -> None:
        query = self._add_query(handle.path, handle.args_json)
        query.oneshots += 1  # keeps the query while we wait
        try:
            await query.arrived.wait()
        finally:
            query.oneshots -= 1
        # No await from here on: no Transition can slip in before the handle has its first value.
        query.handles.add(handle)
        if query.result is not None:
            handle._publish(query.result, initial=True)

    def _detach(self, handle: RemoteSubscription) -> None:
        def detach() -> None:
            query = self._by_key.get(handle.key)
            if query is not None:
                query.handles.discard(handle)
                self._maybe_remove(query)

        if not self.closed:
            try:
                self._loop.call_soon_threadsafe(detach)
            except RuntimeError:
                pass

    async def _catch_up(self, ts: int) -> None:
        """Wait until this client's subscriptions reflect ``ts`` (a commit made over HTTP)."""
        if not self._queries or self._last_end.ts >= ts:
            return
        future = self._loop.create_future()
        self._ts_waiters.append((ts, future))
        # A query set change (even an empty one) makes the server send a Transition at its
        # latest timestamp. If the connection is down, the reconnect's Transition does it.
        await self._flush_query_set(force=True)
        await future

    # -- the Backend API -----------------------------------------------------------------------
    def query(self, target: Any, args: dict | None = None, *, at: Any = None) -> Any:
        """Run a query; ``at`` reads the deployment as it was then (a timestamp from
        ``latest_ts()``, a ``datetime`` or a ``timedelta`` ago; needs the admin key)."""
        if at is not None:
            return self.query_at(target, args, at)  # type: ignore[attr-defined]
        path = _path_of(target)
        return from_json(self._call_sync(self._query(path, _encode_args(path, args))))

    def mutation(self, target: Any, args: dict | None = None) -> Any:
        """Run a mutation; returns once this client's subscriptions reflect its commit."""
        path = _path_of(target)
        return from_json(self._call_sync(self._request("Mutation", path, _encode_args(path, args))))

    def action(self, target: Any, args: dict | None = None) -> Any:
        path = _path_of(target)
        return from_json(self._call_sync(self._request("Action", path, _encode_args(path, args))))

    def run(self, target: Any, args: dict | None = None) -> Any:
        """Admin call of any function by path, internal ones too (needs ``admin_key``)."""
        value, ts = self._run_http(target, args)
        if ts is not None:
            self._catch_up_to(ts)
        return value

    async def query_async(self, target: Any, args: dict | None = None) -> Any:
        path = _path_of(target)
        return from_json(await self._call_async(self._query(path, _encode_args(path, args))))

    async def mutation_async(self, target: Any, args: dict | None = None) -> Any:
        path = _path_of(target)
        return from_json(await self._call_async(self._request("Mutation", path, _encode_args(path, args))))

    async def action_async(self, target: Any, args: dict | None = None) -> Any:
        path = _path_of(target)
        return from_json(await self._call_async(self._request("Action", path, _encode_args(path, args))))

    async def run_async(self, target: Any, args: dict | None = None) -> Any:
        value, ts = await asyncio.to_thread(self._run_http, target, args)
        if ts is not None:
            await self._call_async(self._catch_up(ts))
        return value

    def subscribe(
        self,
        target: Any,
        args: dict | None = None,
        *,
        on_update: Callable[[Any], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
    ) -> RemoteSubscription:
        """Subscribe to a public query; returns once the first result has arrived.

        An unknown function or invalid arguments raise here, as on a Backend; a query that
        fails leaves ``.error`` set, and the handle keeps following it.
        """
        path = _path_of(target)
        handle = RemoteSubscription(self, path, _encode_args(path, args), on_update, on_error)
        self._call_sync(self._subscribe(handle))
        error = handle.error
        if isinstance(error, (FunctionNotFound, ValidationError)):
            handle.unsubscribe()
            raise error
        return handle

    def set_auth(self, token: str | None) -> None:
        """Act as the user of this token (a JWT) from now on; None signs out. Raises
        ``AuthenticationError`` if the server refuses it."""
        self._call_sync(self._set_auth(token))

    def clear_auth(self) -> None:
        self.set_auth(None)

    async def _set_auth(self, token: str | None) -> None:
        self._token = token
        self._impersonate = None
        future = self._loop.create_future()

        def build() -> dict | None:
            message = self._auth_message()
            if message is None:
                message = {"type": "Authenticate", "baseVersion": self._id_version_sent, "tokenType": "None"}
                self._id_version_sent += 1
            self._auth_waiter = (self._id_version_sent, future)
            return message

        await self._send_built(build)
        if self._auth_waiter is None or self._auth_waiter[1] is not future:
            return  # not connected: the token is sent when the connection is back
        await future

    def with_identity(self, identity: dict | None) -> DeploymentClient:
        """A client acting as ``identity`` (impersonation: needs the admin key). One per
        identity, kept and closed with this client: asking again is not another connection."""
        if identity is not None and not self.admin_key:
            raise PermissionError("with_identity() on a remote deployment impersonates users: it needs admin_key")
        acting = None if identity is None else convex_value(dict(identity))
        key = json.dumps(to_json(acting), sort_keys=True)
        client = self._identity_clients.get(key)
        if client is None or client.closed:
            client = DeploymentClient(self.url, admin_key=self.admin_key, _impersonate=acting)
            self._identity_clients[key] = client
        return client

    def wait_for_callbacks(self, timeout: float | None = 10.0) -> bool:
        """Block until every subscription callback scheduled so far has run."""
        return self._dispatcher.drain(timeout)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for client in self._identity_clients.values():
            client.close()

        async def shutdown() -> None:
            self._runner.cancel()
            ws = self._ws
            if ws is not None:
                try:
                    await ws.close()
                except Exception:  # noqa: BLE001, S110 - closing a socket that already failed
                    pass
            for query in self._queries.values():
                for handle in list(query.handles):
                    handle._close_silently()
            for req in self._requests.values():
                if not req.future.done():
                    req.future.set_exception(ConnectionError("The client was closed"))

        if self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
            except Exception:  # noqa: BLE001, S110 - the loop is stopped next whatever happened
                pass
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self._dispatcher.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- HTTP (admin) ------------------------------------------------------------------------------
    def _run_http(self, target: Any, args: dict | None) -> tuple[Any, int | None]:
        if callable(target) and not isinstance(target, (str, RegisteredFunction)):
            raise TypeError("run(callable) needs an embedded Backend; on a remote deployment run a function by path")
        path = _path_of(target)
        if path.startswith("_system/"):
            self._require_admin(path)  # the deployment's admin API: say what is missing
        body = json.dumps({"path": path, "args": _encode_args(path, args), "format": "convex_encoded_json"}).encode()
        payload, headers = self._http("POST", "/api/function", body=body)
        if payload.get("status") == "success":
            ts_header = headers.get(TS_HEADER)
            ts = int(ts_header) if ts_header and ts_header.isdigit() else None
            return from_json(payload.get("value")), ts
        raise _error_from(payload.get("errorMessage", "error"), payload.get("errorData"), "errorData" in payload)

    def invoke(self, target: Any, args: Any = None, *, kind: str | None = None, admin: bool = False,
               at: int | None = None) -> Any:
        """As ``Backend.invoke``: run a function (an admin call, ``/api/function``) and report
        its value or error and its log lines instead of raising. ``kind`` and ``at`` are not
        sent: the server's admin call runs any function at the latest snapshot."""
        from ..backend.app import Invocation

        path = _path_of(target)
        inv = Invocation(path, kind)
        if self._impersonate is not None:  # acting as a user: only the socket carries who
            return self._invoke_as_user(inv, path, args, kind)
        try:
            body = json.dumps({"path": path, "args": _encode_args(path, args), "format": "convex_encoded_json"}).encode()
            if path.startswith("_system/") or admin:
                self._require_admin(path)
            payload, headers = self._http("POST", "/api/function", body=body)
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            inv.error = exc
            return inv
        inv.log_lines = list(payload.get("logLines") or [])
        ts_header = headers.get(TS_HEADER)
        inv.ts = int(ts_header) if ts_header and ts_header.isdigit() else 0
        if payload.get("status") == "success":
            inv.value = from_json(payload.get("value"))
            if inv.ts:
                self._catch_up_to(inv.ts)
        else:
            inv.error = _error_from(payload.get("errorMessage", "error"), payload.get("errorData"), "errorData" in payload)
        return inv

    def _invoke_as_user(self, inv: Any, path: str, args: Any, kind: str | None) -> Any:
        """``invoke`` of an impersonating client: the call goes over the socket, where the
        server knows whom it acts as (HTTP admin calls carry no identity); internal functions
        are then out of reach, as for that user."""
        try:
            if kind is None:
                kind = next((f.kind for f in self.functions() if f.path == path), "query")
            call = {"query": self.query, "mutation": self.mutation, "action": self.action}[kind]
            inv.kind = kind
            inv.value = call(path, args)
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            inv.error = exc
        return inv

    def _catch_up_to(self, ts: int) -> None:
        """Block until this client's subscriptions show the commit at ``ts``."""
        self._call_sync(self._catch_up(ts))
