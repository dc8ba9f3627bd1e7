"""Live REPL sessions, keyed by thread (and branch): a cache the process may empty at any time.

A session belongs to the event loop that started it (its pipes and sockets do), so each loop
has a pool; a server that runs each run on a loop of its own would otherwise keep a live
sandbox per loop for one thread. The pools of a process share one ledger: a key lives in one
pool at a time, at most `max_live` idle sessions stay alive, and a timer closes sessions idle
longer than `idle_seconds` without waiting for the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable

from langgraph_rlm.sandboxes.session import ReplSession

CROSS_LOOP_SECONDS = 30.0
TIMER_SECONDS = 30.0


class SandboxPool:
    def __init__(self, idle_seconds: float, max_live: int, scope: str = "") -> None:
        """`scope`: where the keys' threads are kept (a state dir or database); the same thread
        name in another store is another thread."""
        self.idle_seconds = idle_seconds
        self.max_live = max_live
        self.scope = scope
        self.loop = asyncio.get_running_loop()
        self.sessions: dict[str, ReplSession] = {}
        self.timer: asyncio.Task | None = None

    async def session(self, key: str, create: Callable[[], ReplSession]) -> ReplSession:
        if key not in self.sessions:
            await LEDGER.claim(key, self)
            self.sessions[key] = create()
            await LEDGER.trim(self.max_live, keep=(self, key))
        self._watch()
        return self.sessions[key]

    async def close_idle(self) -> None:
        now = time.monotonic()
        for key, session in list(self.sessions.items()):
            if not session.lock.locked() and now - session.last_used > self.idle_seconds:
                await self.close(key)

    async def close(self, key: str) -> None:
        session = self.sessions.pop(key, None)
        LEDGER.release(key, self)
        if session is not None:
            await session.close()

    async def close_prefix(self, prefix: str) -> None:
        for key in [k for k in self.sessions if k.startswith(prefix)]:
            await self.close(key)

    async def close_all(self) -> None:
        await asyncio.gather(*(self.close(key) for key in list(self.sessions)))

    def idle(self) -> list[tuple[float, str]]:
        return [(s.last_used, key) for key, s in self.sessions.items() if not s.lock.locked()]

    async def close_here(self, key: str) -> None:
        """Closes `key` on this pool's own loop, from whichever loop asks."""
        if asyncio.get_running_loop() is self.loop:
            await self.close(key)
            return
        if self.loop.is_closed() or not self.loop.is_running():
            self.sessions.pop(key, None)
            return
        closing = asyncio.run_coroutine_threadsafe(self.close(key), self.loop)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.wrap_future(closing), CROSS_LOOP_SECONDS)

    def _watch(self) -> None:
        """Idle sessions close on a timer, which ends with the last session."""
        if self.timer is None or self.timer.done():
            self.timer = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        while self.sessions:
            await asyncio.sleep(min(TIMER_SECONDS, max(0.1, self.idle_seconds / 2)))
            await self.close_idle()


class Ledger:
    """Which pool holds which key, across the loops of the process."""

    def __init__(self) -> None:
        self.owners: dict[tuple[str, str], SandboxPool] = {}
        self.lock = threading.Lock()

    async def claim(self, key: str, pool: SandboxPool) -> None:
        with self.lock:
            owner, self.owners[(pool.scope, key)] = self.owners.get((pool.scope, key)), pool
        if owner is not None and owner is not pool:
            await owner.close_here(key)

    def release(self, key: str, pool: SandboxPool) -> None:
        with self.lock:
            if self.owners.get((pool.scope, key)) is pool:
                del self.owners[(pool.scope, key)]

    async def trim(self, max_live: int, keep: tuple[SandboxPool, str]) -> None:
        """Closes the longest-idle sessions while more than `max_live` are alive; a session
        running a cell is never closed, so busy ones may exceed the cap for as long as they run."""
        with self.lock:
            pools = set(self.owners.values())
        idle = [(used, key, pool) for pool in pools for used, key in pool.idle() if (pool, key) != keep]
        idle.sort(key=lambda entry: entry[0])
        live = sum(len(pool.sessions) for pool in pools)
        for _, key, pool in idle[: max(0, live - max_live)]:
            await pool.close_here(key)


LEDGER = Ledger()
