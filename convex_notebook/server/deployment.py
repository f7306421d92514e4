"""The serving side of one Backend: settings, sessions, the commit hook, mutation dedup.

Concurrency model. The event loop (uvicorn's) only parses, encodes and sends; every call into
the backend runs on a thread pool. Queries, mutations and actions run side by side there (the
engine's snapshots and optimistic commits: no lock is held while user code runs). What the
sync sessions share with those threads (their query sets, what they last sent) changes only
under the subscription hub's lock (``self.lock``), which is held only for bookkeeping, never
while a function runs. Live results change under that lock too, all at once per commit, so a
commit sees every session in a consistent state: the commit hook (run by the committer right
after the engine has re-run the affected live queries) collects, per session, the query
results that changed and the commit timestamp, and hands them to the loop in one batch, in
commit order.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .auth import (
    NO_PROVIDER_MESSAGE,
    AuthenticationError,
    TokenVerifier,
    generate_admin_key,
    unverified_claims,
)

if TYPE_CHECKING:
    from ..backend.app import Backend
    from .sync import SyncSession

__all__ = ["Deployment", "ServerSettings"]

# How far ahead of our clock a client's maxObservedTimestamp may be (we then move our
# timestamps past it, so that they never go backwards for that client).
MAX_CLIENT_TS_AHEAD_NS = 10 * 60 * 1_000_000_000


@dataclass
class ServerSettings:
    """Limits and timings of a server (all have sensible defaults)."""

    max_message_bytes: int = 16 * 1024 * 1024  # WebSocket message and HTTP body limit
    max_import_bytes: int = 1024 * 1024 * 1024  # the body of /api/import (a whole table's file)
    ping_interval: float = 15.0  # JSON {"type":"Ping"} after this long without sending anything
    ws_ping_interval: float = 5.0  # WebSocket-level pings
    ws_ping_timeout: float = 120.0
    threads: int = 32  # the pool that runs backend calls
    dedup_entries: int = 10_000  # remembered (sessionId, requestId) → mutation results
    print_admin_key: bool = True  # print the admin key at start when it was just created
    # Accept user tokens without verifying them (their claims as they say) when no auth
    # provider matches: local experiments only. Announced at start.
    dev_tokens: bool = False
    # Accept the admin key as ?adminKey= in URLs (off: URLs end up in logs and histories).
    allow_admin_key_in_url: bool = False
    # Fair sharing: what one connection may hold at once. Queries past the first N of a
    # query set fail (QueryFailed) rather than take memory and CPU from everyone; actions past
    # N wait for a slot of their own connection; /api/query_batch takes at most N queries.
    max_queries_per_session: int = 10_000
    max_actions_in_flight: int = 16
    max_batch_queries: int = 1_000


@dataclass
class StoredMutation:
    """A committed mutation's response, kept to answer a replay without running it again."""

    value: Any
    error: BaseException | None
    log_lines: list[str]
    ts: int | None
    call: str = ""  # who called what with which arguments (see SyncSession._mutation)


class Deployment:
    """One Backend as seen by the network (see module docstring)."""

    def __init__(
        self,
        backend: Backend,
        *,
        admin_key: str | None = None,
        verify_token: TokenVerifier | None = None,
        settings: ServerSettings | None = None,
    ) -> None:
        self.backend = backend
        self.settings = settings or ServerSettings()
        self.verify_token = verify_token
        self.lock = backend.subscription_hub.lock
        self._dedup_lock = threading.Lock()
        self.admin_key_created = False  # True when this start made (and saved) a new key
        self.admin_key = self._admin_key(admin_key)
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.settings.threads, thread_name_prefix="convex-server"
        )
        self.sessions: set[SyncSession] = set()  # changed under self.lock
        self._dedup: OrderedDict[tuple[str, int], StoredMutation] = OrderedDict()  # under self._dedup_lock
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closed = False
        self.cleanups: list[Callable[[], None]] = []  # run by close() (e.g. removing export files)
        # (after the subscription hub's listener: live queries are re-run by then)
        self._stop_following_commits = backend.on_commit(self._on_commit)
        backend.registry.listeners.append(self._on_function_changed)

    # -- admin key --------------------------------------------------------------------------
    def _admin_key(self, given: str | None) -> str:
        """The given key, else the one saved with the database, else a new one (saved when
        the database is a file, so that it survives restarts). ``$CONVEX_NOTEBOOK_ADMIN_KEY``
        is the clients' setting (``cn.connect``, ``--url`` commands), never read here."""
        if given:
            return given
        # Kept with the data: the same key after a restart.
        key, self.admin_key_created = self.backend.stored_setting("admin_key", generate_admin_key)
        if self.backend.path:
            _restrict_to_owner(self.backend.path)  # the file holds the key: owner only
        return key

    # -- user tokens ------------------------------------------------------------------------
    def token_claims(self, token: str) -> dict:
        """The claims of a user token, verified by the backend's auth providers (a
        ``verify_token`` given to ``serve`` replaces them); any thread. Unverified claims only
        with ``dev_tokens``, for tokens no provider claims."""
        if self.verify_token is not None:
            return self.verify_token(token)
        providers = getattr(self.backend, "auth_providers", None)
        if providers:
            if self.settings.dev_tokens and providers.find(token) is None:
                return unverified_claims(token)
            return providers.verify(token)
        if self.settings.dev_tokens:
            return unverified_claims(token)
        raise AuthenticationError(
            f"{NO_PROVIDER_MESSAGE} (no providers configured). Configure them with "
            "cn.Backend(auth={'providers': [...]}) or app.set_auth(...), as Convex's auth.config.ts; "
            "serve with dev_tokens=True (serve --dev-tokens) to accept unverified tokens locally",
            code="NoAuthProvider",
        )

    # -- running backend calls --------------------------------------------------------------
    async def run_blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, fn, *args)

    def attach_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    # -- sessions ---------------------------------------------------------------------------
    def add_session(self, session: SyncSession) -> None:
        with self.lock:
            self.sessions.add(session)

    def observe_client_ts(self, ts: int) -> bool:
        """A client has seen ``ts`` (``maxObservedTimestamp``). Make sure our timestamps are
        past it, but never past our own clock (a client cannot push them into the future);
        False if it is too far in the future to be one of ours."""
        if ts <= self.backend.latest_ts():
            return True
        now = time.time_ns()
        if ts > now + MAX_CLIENT_TS_AHEAD_NS:
            return False
        self.backend.observe_ts(min(ts, now))  # the next commit gets a later timestamp
        return True

    # -- mutation dedup ---------------------------------------------------------------------
    def stored_mutation(self, key: tuple[str, int]) -> StoredMutation | None:
        with self._dedup_lock:
            return self._dedup.get(key)

    def store_mutation(self, key: tuple[str, int], result: StoredMutation) -> None:
        with self._dedup_lock:
            self._dedup[key] = result
            while len(self._dedup) > self.settings.dedup_entries:
                self._dedup.popitem(last=False)

    # -- reactivity -------------------------------------------------------------------------
    def _on_commit(self, ts: int) -> None:
        """Commit listener (by the committer, after the live queries were re-run)."""
        with self.lock:
            self.publish_changes()

    def _on_function_changed(self, path: str) -> None:
        with self.lock:
            for session in list(self.sessions):
                session.retry_failed_locked()
            self.publish_changes()

    def publish_changes(self, force: SyncSession | None = None) -> None:
        """Under the lock: every session's changed results go to the loop, in one batch."""
        batch = []
        for session in self.sessions:
            if session.holding:
                continue  # its mutation is running: it reports right after the response
            snapshot = session.capture_locked(force=session is force)
            if snapshot is not None:
                batch.append((session, snapshot))
        if batch:
            self.post(_deliver_batch, batch)

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the event loop, in the order of posting."""
        loop = self.loop
        if loop is None or self.closed:
            return
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: the server is stopping
            pass

    def close(self) -> None:
        """Detach from the backend and free every session's subscriptions."""
        if self.closed:
            return
        self.closed = True
        self._stop_following_commits()
        try:
            self.backend.registry.listeners.remove(self._on_function_changed)
        except ValueError:
            pass
        with self.lock:
            sessions = list(self.sessions)
            self.sessions.clear()
            for session in sessions:
                session.release_locked()
        self.executor.shutdown(wait=False, cancel_futures=True)
        for cleanup in self.cleanups:
            cleanup()


def _restrict_to_owner(path: str) -> None:
    """Make a database file (and its WAL companions) readable by its owner only."""
    for name in (path, path + "-wal", path + "-shm"):
        try:
            if os.stat(name).st_mode & 0o077:
                os.chmod(name, 0o600)
        except FileNotFoundError:
            continue
        except OSError as exc:  # not ours to change: say so rather than fail the start
            print(f"convex_notebook: could not make {name} private ({exc}); it holds the admin key", flush=True)


def _deliver_batch(batch: list[tuple[SyncSession, Any]]) -> None:
    for session, snapshot in batch:
        session.enqueue_transition(snapshot)
