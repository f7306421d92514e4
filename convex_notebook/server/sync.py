"""One WebSocket connection speaking the sync protocol (``PROTOCOL.md`` §3).

Messages are handled one at a time, in order (mutations of one socket run serially, as on
Convex); actions run concurrently. Everything sent goes through one writer task, so frames
leave in exactly the order they were queued, and each Transition starts at the previous one's
end version.

State shared with the backend's threads (``queries``, ``pending``, the versions, ``holding``)
changes only under the subscription hub's lock (``dep.lock``); see ``deployment.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import traceback
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..backend.registry import FunctionNotFound
from ..errors import InvalidValueError
from ..values import to_json
from . import protocol as P
from .auth import (
    AuthenticationError,
    admin_key_matches,
    identity_from_attributes,
    user_identity,
)
from .deployment import StoredMutation

if TYPE_CHECKING:
    from starlette.websockets import WebSocket

    from ..engine.subscriptions import Subscription
    from .deployment import Deployment

__all__ = ["Snapshot", "SyncSession"]

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_INTERNAL = 1011
MAX_REASON_BYTES = 123


@dataclass
class Snapshot:
    """Query results that changed, captured under the lock at one timestamp."""

    query_set: int
    identity: int
    ts: int
    modifications: list[tuple]  # ("updated", qid, value, logs, journal) | ("failed", qid, exc, logs, journal) | ("removed", qid)


class _Query:
    __slots__ = ("args_raw", "error", "journal", "query_id", "sent_version", "sub", "udf_path")

    def __init__(self, query_id: int, udf_path: str, args_raw: Any, journal: str | None) -> None:
        self.query_id = query_id
        self.udf_path = udf_path
        self.args_raw = args_raw
        self.journal = journal
        self.sub: Subscription | None = None
        self.error: BaseException | None = None  # why subscribing failed (sub is None then)
        self.sent_version = -1  # the subscription version last captured for the client


def _reason(text: str) -> str:
    raw = text.encode()[:MAX_REASON_BYTES]
    return raw.decode(errors="ignore")


class SyncSession:
    """The server side of one client's sync connection."""

    def __init__(self, deployment: Deployment, websocket: WebSocket) -> None:
        self.dep = deployment
        self.backend = deployment.backend
        self.ws = websocket
        self.loop = asyncio.get_running_loop()
        self.session_id: str | None = None
        # Shared with backend threads: under the database lock.
        self.queries: dict[int, _Query] = {}
        self.pending: list[tuple] = []
        self.qs_version = 0
        self.id_version = 0
        self.identity: dict | None = None
        self.admin = False  # authenticated with the admin key (no impersonation): internal functions too
        self.view = self.backend.with_identity(None)
        self.holding = False  # a mutation of this session is running (it reports by itself)
        self.released = False
        # Loop only.
        self.last_end = P.StateVersion()
        self.outbox = _Outbox()
        self.last_send = self.loop.time()
        self.closed = False
        self.actions: set[asyncio.Task] = set()
        self.action_slots: asyncio.Semaphore | None = None  # made on the loop, at the first action

    # == the connection ======================================================================
    async def run(self) -> None:
        await self.ws.accept()
        self.dep.attach_loop(self.loop)
        await self.dep.run_blocking(self.dep.add_session, self)
        writer = asyncio.create_task(self._writer())
        pinger = asyncio.create_task(self._pinger())
        try:
            while not self.closed:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:
                    data = message.get("bytes") or b""
                    try:
                        text = data.decode()
                    except UnicodeDecodeError:
                        raise P.ProtocolError("Binary frame is not UTF-8 text") from None
                try:
                    if len(text) > _PARSE_ON_LOOP_CHARS:  # a big frame: parsed off the event loop
                        self._refuse_oversized_query_set(text)
                        parsed = await self.dep.run_blocking(P.parse_client_message, text)
                    else:
                        parsed = P.parse_client_message(text)
                    await self._handle(parsed)
                except P.ProtocolError as exc:
                    await self._close(CLOSE_POLICY, exc.reason)
                    break
                except _AuthRefused:
                    break
        except P.ProtocolError as exc:
            await self._close(CLOSE_POLICY, exc.reason)
        except Exception as exc:  # noqa: BLE001 - a server bug must not take the server down
            if not _is_disconnect(exc):
                traceback.print_exc(file=sys.stderr)
                await self._close(CLOSE_INTERNAL, f"InternalServerError: {type(exc).__name__}")
        finally:
            self.closed = True
            pinger.cancel()
            if not writer.done():
                self.outbox.put_nowait(("stop",))
                try:
                    await asyncio.wait_for(writer, 5)
                except (TimeoutError, asyncio.CancelledError, Exception):  # noqa: BLE001 - closing anyway
                    writer.cancel()
            for task in list(self.actions):
                task.cancel()
            try:
                await self.dep.run_blocking(self.release)
            except RuntimeError:  # the executor is shut down: the deployment released us
                pass

    async def _close(self, code: int, reason: str) -> None:
        self.outbox.put_nowait(("close", code, _reason(reason)))
        self.closed = True

    def release(self) -> None:
        """Unsubscribe everything (any thread)."""
        with self.dep.lock:
            self.dep.sessions.discard(self)
            self.release_locked()

    def release_locked(self) -> None:
        if self.released:
            return
        self.released = True
        for entry in self.queries.values():
            if entry.sub is not None:
                entry.sub.unsubscribe()
        self.queries.clear()

    # == messages ============================================================================
    async def _handle(self, msg: P.ClientMessage) -> None:
        if isinstance(msg, P.Connect):
            if self.session_id is not None:
                raise P.ProtocolError("Connect was sent twice on one connection")
            if msg.max_observed_ts is not None and not await self.dep.run_blocking(
                self.dep.observe_client_ts, msg.max_observed_ts
            ):
                raise P.ProtocolError(
                    "maxObservedTimestamp is ahead of this deployment's clock", code="InvalidMaxObservedTimestamp"
                )
            self.session_id = msg.session_id
            return
        if self.session_id is None:
            raise P.ProtocolError(f"The first message must be Connect, got {type(msg).__name__}")
        if isinstance(msg, P.ModifyQuerySet):
            await self.dep.run_blocking(self._modify_query_set, msg)
        elif isinstance(msg, P.MutationRequest):
            await self.dep.run_blocking(self._mutation, msg)
        elif isinstance(msg, P.ActionRequest):
            task = asyncio.create_task(self._action_in_turn(msg))
            self.actions.add(task)
            task.add_done_callback(self.actions.discard)
        elif isinstance(msg, P.Authenticate):
            await self._authenticate(msg)
        # Event: telemetry, nothing to do.

    # -- query set ---------------------------------------------------------------------------
    def _modify_query_set(self, msg: P.ModifyQuerySet) -> None:
        with self.dep.lock:
            self._check_modification_locked(msg)
        # The new queries' first runs happen outside the lock, a slice at a time: other
        # sessions' calls and commits go on meanwhile. They are live (kept current by
        # commits) from their first run; the client sees them all at once, below.
        # Keyed by the modification's position, not its queryId: one message may Add, Remove
        # and Add the same id again, and each Add is its own subscription.
        added: dict[int, _Query] = {}
        failures: dict[int, tuple] = {}
        for n, mod in enumerate(msg.modifications):
            if isinstance(mod, P.QueryAdd):
                entry = added[n] = _Query(mod.query_id, mod.udf_path, mod.args, mod.journal)
                failure = self._subscribe(entry, report=True)
                if failure is not None:
                    failures[n] = failure
        with self.dep.lock:
            for n, mod in enumerate(msg.modifications):
                if isinstance(mod, P.QueryAdd):
                    self.queries[mod.query_id] = added[n]
                    if n in failures:
                        self.pending.append(failures[n])
                    if self.released:  # the connection closed meanwhile
                        self._unsubscribe_entry(added[n])
                else:
                    entry = self.queries.pop(mod.query_id)
                    self._unsubscribe_entry(entry)
                    self.pending.append(("removed", mod.query_id))
            self.qs_version = msg.new_version
            self._publish_self_locked()

    @staticmethod
    def _unsubscribe_entry(entry: _Query) -> None:
        if entry.sub is not None:
            entry.sub.unsubscribe()
            entry.sub = None

    def _refuse_oversized_query_set(self, text: str) -> None:
        """A big frame adding far more queries than a connection may hold is refused before
        it is parsed: counting its Adds is a C-speed scan, while parsing 100,000 of them would
        hold the interpreter from every other connection for a while. (The count has a factor
        of two to spare, for arguments that happen to spell "Add"; between the limit and
        twice it, the frame is parsed and then refused.)"""
        limit = self.dep.settings.max_queries_per_session
        if '"ModifyQuerySet"' in text and text.count('"Add"') > 2 * limit:
            raise P.ProtocolError(
                f"The query set would hold more than {limit} queries; one connection holds at most "
                f"{limit} (ServerSettings.max_queries_per_session)", code="TooManyQueries",
            )

    def _check_modification_locked(self, msg: P.ModifyQuerySet) -> None:
        """Refuse a modification that does not fit the query set, or that would take the
        connection past its share of live queries (before changing anything)."""
        if msg.base_version != self.qs_version:
            raise P.ProtocolError(
                f"ModifyQuerySet baseVersion {msg.base_version} does not match the query set "
                f"version {self.qs_version}", code="InvalidQuerySetVersion",
            )
        if msg.new_version <= msg.base_version:
            raise P.ProtocolError(
                f"ModifyQuerySet newVersion {msg.new_version} must be greater than baseVersion "
                f"{msg.base_version}", code="InvalidQuerySetVersion",
            )
        ids = set(self.queries)
        for mod in msg.modifications:  # check everything before changing anything
            if isinstance(mod, P.QueryAdd):
                if mod.query_id in ids:
                    raise P.ProtocolError(f"Duplicate query id {mod.query_id} in Add")
                ids.add(mod.query_id)
            else:
                if mod.query_id not in ids:
                    raise P.ProtocolError(f"Remove of unknown query id {mod.query_id}")
                ids.discard(mod.query_id)
        limit = self.dep.settings.max_queries_per_session
        if len(ids) > limit:
            raise P.ProtocolError(
                f"The query set would hold {len(ids)} queries; one connection holds at most {limit} "
                "(ServerSettings.max_queries_per_session)", code="TooManyQueries",
            )

    def _subscribe(self, entry: _Query, *, report: bool, view: Any = None, admin: bool | None = None) -> tuple | None:
        """Subscribe ``entry``; its failure is returned as the QueryFailed to report (to be
        added to ``pending`` under the lock). Under the lock or not: the hub runs the query
        outside its lock unless the caller holds it."""
        try:
            args = P.decode_args(entry.args_raw)
            view = view if view is not None else self.view
            admin = admin if admin is not None else self.admin
            entry.sub = view.subscribe(entry.udf_path, args, journal=entry.journal, admin=admin)
            entry.error = None
            entry.sent_version = -1
        except Exception as exc:  # noqa: BLE001 - reported to the client as QueryFailed
            entry.sub = None
            changed = entry.error is None or str(entry.error) != str(exc)
            entry.error = exc
            if report or changed:
                return ("failed", entry.query_id, exc, [], entry.journal)
        return None

    def retry_failed_locked(self) -> None:
        """A function was defined: queries that failed for want of it may work now."""
        for entry in self.queries.values():
            if entry.sub is None and isinstance(entry.error, FunctionNotFound):
                failure = self._subscribe(entry, report=False)
                if failure is not None:
                    self.pending.append(failure)

    def capture_locked(self, force: bool = False) -> Snapshot | None:
        """Under the lock: the results that changed since the last capture (None if nothing
        did and ``force`` is False)."""
        mods, self.pending = self.pending, []
        for qid, entry in self.queries.items():
            sub = entry.sub
            if sub is None:
                continue
            version = sub.version
            if version == entry.sent_version:
                continue
            entry.sent_version = version
            error = sub.error
            if error is not None:
                mods.append(("failed", qid, error, sub.log_lines, sub.journal))
            else:
                mods.append(("updated", qid, sub.value, sub.log_lines, sub.journal))
        if not mods and not force:
            return None
        # The timestamp every live result reflects now (the hub's: under its lock, a commit
        # is either wholly in the results or not yet).
        return Snapshot(self.qs_version, self.id_version, self.backend.subscription_hub.ts, mods)

    def _publish_self_locked(self) -> None:
        snapshot = self.capture_locked(force=True)
        self.dep.post(self.enqueue_transition, snapshot)

    # -- mutations and actions ---------------------------------------------------------------
    def _call_fingerprint(self, msg: P.MutationRequest) -> str:
        """Who calls what with which arguments: a replay must match the stored call exactly."""
        who = "admin" if self.admin else (self.identity or {}).get("tokenIdentifier", "")
        try:
            args = json.dumps(msg.args, sort_keys=True, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            args = repr(msg.args)
        return hashlib.sha256(json.dumps([who, msg.udf_path, args]).encode()).hexdigest()

    def _mutation(self, msg: P.MutationRequest) -> None:
        key = (self.session_id or "", msg.request_id)
        call = self._call_fingerprint(msg)
        stored = self.dep.stored_mutation(key)
        if stored is not None and stored.call != call:
            # The same (sessionId, requestId) for another call, or from another identity: not
            # a replay. Refused rather than answered with someone else's result.
            stored = StoredMutation(None, ReplayMismatch(
                f"Mutation request {msg.request_id} of this session was already used for a different "
                "call (another function, other arguments or another identity); it was not run. "
                "Use a new requestId, or a new sessionId per connection."
            ), [], None, call)
        elif stored is None:  # not a replay after a reconnect: run it (no lock held)
            try:
                args = P.decode_args(msg.args)
            except InvalidValueError as exc:
                stored = StoredMutation(None, exc, [], None, call)
            else:
                # Held back: this session's transitions wait for the mutation's response,
                # which the transition including its commit follows.
                with self.dep.lock:
                    self.holding = True
                try:
                    inv = self.view.invoke(msg.udf_path, args, kind="mutation", admin=self.admin)
                finally:
                    with self.dep.lock:
                        self.holding = False
                stored = StoredMutation(
                    inv.value, inv.error, inv.log_lines, inv.ts if inv.error is None else None, call
                )
                self.dep.store_mutation(key, stored)
        with self.dep.lock:
            # Then a Transition at or past the commit: clients wait for it (read your writes).
            snapshot = self.capture_locked(force=True)
            self.dep.post(self.enqueue_mutation_result, msg.request_id, stored, snapshot)

    async def _action_in_turn(self, msg: P.ActionRequest) -> None:
        """An action, once one of this connection's slots is free: one socket's actions never
        hold more than its share of the server's threads."""
        if self.action_slots is None:
            self.action_slots = asyncio.Semaphore(self.dep.settings.max_actions_in_flight)
        async with self.action_slots:
            await self._action(msg)

    async def _action(self, msg: P.ActionRequest) -> None:
        view, admin = self.view, self.admin
        try:
            args = P.decode_args(msg.args)
        except InvalidValueError as exc:
            self.outbox.put_nowait(("msg", P.action_response(msg.request_id, error=exc, log_lines=[])))
            return
        inv = await self.dep.run_blocking(lambda: view.invoke(msg.udf_path, args, kind="action", admin=admin))
        if inv.error is None:
            try:
                response = P.action_response(msg.request_id, value_json=to_json(inv.value), log_lines=inv.log_lines)
            except Exception as exc:  # noqa: BLE001
                response = P.action_response(msg.request_id, error=exc, log_lines=inv.log_lines)
        else:
            response = P.action_response(msg.request_id, error=inv.error, log_lines=inv.log_lines)
        if not self.closed:
            self.outbox.put_nowait(("msg", response))

    # -- authentication ------------------------------------------------------------------------
    async def _authenticate(self, msg: P.Authenticate) -> None:
        if msg.base_version != self.id_version:
            raise P.ProtocolError(
                f"Authenticate baseVersion {msg.base_version} does not match the identity version "
                f"{self.id_version}", code="InvalidIdentityVersion",
            )
        try:
            identity, admin = await self.dep.run_blocking(self._identity_for, msg)
        except AuthenticationError as exc:
            self.outbox.put_nowait(("msg", P.auth_error(str(exc), msg.base_version)))
            await self._close(CLOSE_NORMAL, "AuthError")
            raise _AuthRefused() from None
        await self.dep.run_blocking(self._set_identity, identity, admin)

    def _identity_for(self, msg: P.Authenticate) -> tuple[dict | None, bool]:
        """``(identity, admin)``: an admin key without impersonation may call internal and
        system functions (the CLI's ``npx convex data`` / ``run`` and dashboards do)."""
        if msg.token_type == "None":
            return None, False
        if msg.token_type == "User":
            return user_identity(msg.value or "", self.dep.token_claims), False
        if not admin_key_matches(msg.value, self.dep.admin_key):
            raise AuthenticationError("The admin key is not valid for this deployment")
        if msg.impersonating:
            return identity_from_attributes(msg.impersonating), False
        return None, True

    def _set_identity(self, identity: dict | None, admin: bool = False) -> None:
        view = self.backend.with_identity(identity)
        with self.dep.lock:
            current = list(self.queries.values())
        # Every result may depend on who asks: subscribe again as the new identity (outside
        # the lock), then swap.
        renewed = [_Query(e.query_id, e.udf_path, e.args_raw, e.journal) for e in current]
        failures = []
        for entry in renewed:
            failure = self._subscribe(entry, report=True, view=view, admin=admin)
            if failure is not None:
                failures.append(failure)
        with self.dep.lock:
            self.identity = identity
            self.admin = admin
            self.view = view
            self.id_version += 1
            for entry in renewed:
                previous = self.queries.get(entry.query_id)
                if previous is not None:
                    self._unsubscribe_entry(previous)
                    self.queries[entry.query_id] = entry
                else:
                    self._unsubscribe_entry(entry)
            self.pending.extend(failures)
            self._publish_self_locked()

    # == sending ============================================================================
    def enqueue_transition(self, snapshot: Snapshot) -> None:
        if not self.closed:
            self.outbox.put_nowait(("transition", snapshot))

    def enqueue_mutation_result(self, request_id: int, stored: StoredMutation, snapshot: Snapshot) -> None:
        if not self.closed:
            self.outbox.put_nowait(("mutation", request_id, stored, snapshot))

    def _transition_text(self, snapshot: Snapshot) -> str:
        start = self.last_end
        # Timestamps never go backwards on a socket.
        end = P.StateVersion(snapshot.query_set, snapshot.identity, max(snapshot.ts, start.ts))
        mods = []
        for mod in snapshot.modifications:
            kind = mod[0]
            if kind == "updated":
                try:
                    mods.append(P.query_updated(mod[1], to_json(mod[2]), list(mod[3]), mod[4]))
                except Exception as exc:  # noqa: BLE001 - not encodable: report it as the query's error
                    mods.append(P.query_failed(mod[1], exc, list(mod[3]), mod[4]))
            elif kind == "failed":
                mods.append(P.query_failed(mod[1], mod[2], list(mod[3]), mod[4]))
            else:
                mods.append(P.query_removed(mod[1]))
        self.last_end = end
        return P.dumps(P.transition(start, end, mods))

    @staticmethod
    def _mutation_text(request_id: int, stored: StoredMutation) -> str:
        if stored.error is None:
            try:
                return P.dumps(P.mutation_response(
                    request_id, value_json=to_json(stored.value), ts=stored.ts, log_lines=stored.log_lines
                ))
            except Exception as exc:  # noqa: BLE001
                return P.dumps(P.mutation_response(request_id, error=exc, ts=None, log_lines=stored.log_lines))
        return P.dumps(P.mutation_response(request_id, error=stored.error, ts=None, log_lines=stored.log_lines))

    async def _writer(self) -> None:
        ws = self.ws
        while True:
            item = await self.outbox.get()
            kind = item[0]
            if kind == "transition":
                # Transitions queued behind this one: send one Transition to the latest state
                # (a slow client gets fewer, larger frames instead of a growing backlog).
                while self.outbox.peek_kind() == "transition":
                    item = ("transition", _merge(item[1], self.outbox.pop()[1]))
            try:
                if kind == "transition":
                    await ws.send_text(self._transition_text(item[1]))
                elif kind == "mutation":
                    await ws.send_text(self._mutation_text(item[1], item[2]))
                    await ws.send_text(self._transition_text(item[3]))
                elif kind == "msg":
                    await ws.send_text(P.dumps(item[1]))
                elif kind == "close":
                    await ws.close(item[1], item[2])
                    return
                else:  # "stop"
                    return
            except Exception as exc:  # noqa: BLE001 - the peer went away
                if not _is_disconnect(exc):
                    traceback.print_exc(file=sys.stderr)
                self.closed = True
                return
            self.last_send = self.loop.time()

    async def _pinger(self) -> None:
        interval = self.dep.settings.ping_interval
        while True:
            await asyncio.sleep(interval / 3)
            if self.loop.time() - self.last_send >= interval and self.outbox.empty():
                self.outbox.put_nowait(("msg", P.ping()))


# Frames longer than this are parsed on the thread pool: a 10 MB query set must not hold up
# every other connection's frames while it is parsed.
_PARSE_ON_LOOP_CHARS = 256 * 1024


class _AuthRefused(Exception):
    pass


class ReplayMismatch(Exception):
    """A mutation reused the (sessionId, requestId) of another call."""


class _Outbox:
    """What a session will send, in order (a deque the writer can look ahead in)."""

    def __init__(self) -> None:
        self._items: deque[tuple] = deque()
        self._ready = asyncio.Event()

    def put_nowait(self, item: tuple) -> None:
        self._items.append(item)
        self._ready.set()

    async def get(self) -> tuple:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def peek_kind(self) -> str | None:
        return self._items[0][0] if self._items else None

    def pop(self) -> tuple:
        return self._items.popleft()

    def empty(self) -> bool:
        return not self._items

    def __len__(self) -> int:
        return len(self._items)


def _merge(first: Snapshot, second: Snapshot) -> Snapshot:
    """One snapshot going from before ``first`` to ``second``: the latest news of each query."""
    latest: dict[int, tuple] = {}
    for mod in first.modifications:
        latest[mod[1]] = mod
    for mod in second.modifications:
        latest.pop(mod[1], None)  # keep the order of arrival of the newest news
        latest[mod[1]] = mod
    return Snapshot(second.query_set, second.identity, max(first.ts, second.ts), list(latest.values()))


def _is_disconnect(exc: BaseException) -> bool:
    name = type(exc).__name__
    return name in ("WebSocketDisconnect", "ClientDisconnected", "ConnectionClosed", "ConnectionClosedOK",
                    "ConnectionClosedError") or isinstance(exc, (ConnectionError, asyncio.CancelledError))
