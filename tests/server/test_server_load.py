"""Load: 50 concurrent WebSocket clients, each subscribed and writing, for 30 s.

All of them converge to the same final state, nobody sees an error or a broken Transition
chain, and the server's memory stays flat. The server runs in its own process
(`convex-notebook serve`), so its memory is its own.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from server_helpers import RawSync, ServerProcess, free_port, mods_by_id

pytestmark = pytest.mark.slow

CLIENTS = 50
DURATION = float(os.environ.get("CONVEX_NOTEBOOK_LOAD_SECONDS", "30"))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class LoadClient:
    def __init__(self, url: str, n: int) -> None:
        self.sync = RawSync(url)  # checks every Transition starts where the last one ended
        self.name = f"c{n}"
        self.writes = 0
        self.view: dict = {}
        self.errors: list[Any] = []

    async def run(self, until: float) -> None:
        c = await self.sync.open()
        t = await c.modify(c.add(0, "load:all"))
        self.view = mods_by_id(t)[0]["value"]
        rid = 0
        counter = None  # the id of this client's counter, once its first bump made it
        while time.monotonic() < until:
            args = {"name": self.name} if counter is None else {"name": self.name, "id": counter}
            await c.send({"type": "Mutation", "requestId": rid, "udfPath": "load:bump", "args": [args]})
            rid += 1
            answered = False
            while True:  # the response, then the Transition reaching it
                msg = await c.recv()
                if msg["type"] == "MutationResponse":
                    if not msg["success"]:
                        self.errors.append(msg)
                    else:
                        self.writes += 1
                        counter = msg["result"]
                    answered = True
                elif msg["type"] == "Transition":
                    self._apply(msg)
                    if answered:
                        break
                else:
                    self.errors.append(msg)

    def _apply(self, transition: dict) -> None:
        for mod in transition["modifications"]:
            if mod["type"] == "QueryUpdated":
                self.view = mod["value"]
            else:
                self.errors.append(mod)

    async def converge(self, expected: dict) -> None:
        while self.view != expected:
            msg = await self.sync.recv(timeout=60)
            if msg["type"] == "Transition":
                self._apply(msg)
        await self.sync.close()


def test_fifty_clients_subscribed_and_writing(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "load.sqlite3", free_port()).start()
    try:
        pid = server.proc.pid  # type: ignore[union-attr]
        memory: list[tuple[float, float]] = []

        async def sample_memory(until: float) -> None:
            start = time.monotonic()
            while time.monotonic() < until:
                memory.append((time.monotonic() - start, rss_mb(pid)))
                await asyncio.sleep(1)

        async def main() -> list[LoadClient]:
            clients = [LoadClient(server.url, n) for n in range(CLIENTS)]
            until = time.monotonic() + DURATION
            await asyncio.gather(sample_memory(until), *(c.run(until) for c in clients))
            expected = {c.name: float(c.writes) for c in clients}
            await asyncio.gather(*(c.converge(expected) for c in clients))
            return clients

        clients = asyncio.run(main())
        expected = {c.name: float(c.writes) for c in clients}
        assert all(c.writes > 0 for c in clients)
        assert all(c.view == expected for c in clients)  # everyone converged to the same state
        assert [e for c in clients for e in c.errors] == []
        # The server agrees (read over HTTP, after the fact).
        import httpx

        assert httpx.post(server.url + "/api/query", json={"path": "load:all", "args": {}}).json()["value"] == expected
        # Memory stable: the last third of the run holds no more than the first third plus slack.
        third = len(memory) // 3
        early = max(rss for _, rss in memory[: third or 1])
        late = max(rss for _, rss in memory[-(third or 1):])
        print(f"\nload: {sum(expected.values()):.0f} mutations by {CLIENTS} clients in {DURATION:.0f} s; "
              f"server RSS {early:.0f} MB → {late:.0f} MB")
        assert late <= early * 1.25 + 10, memory
    finally:
        server.stop()
