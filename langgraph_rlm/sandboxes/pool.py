"""Live REPL sessions, keyed by thread: a cache the process may empty at any time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from langgraph_rlm.sandboxes.session import ReplSession


class SandboxPool:
    def __init__(self, idle_seconds: float) -> None:
        self.idle_seconds = idle_seconds
        self.sessions: dict[str, ReplSession] = {}

    async def session(self, key: str, create: Callable[[], ReplSession]) -> ReplSession:
        await self.close_idle(keep=key)
        if key not in self.sessions:
            self.sessions[key] = create()
        return self.sessions[key]

    async def close_idle(self, keep: str | None = None) -> None:
        now = time.monotonic()
        for key, session in list(self.sessions.items()):
            if key != keep and not session.lock.locked() and now - session.last_used > self.idle_seconds:
                await self.close(key)

    async def close(self, key: str) -> None:
        session = self.sessions.pop(key, None)
        if session is not None:
            await session.close()

    async def close_prefix(self, prefix: str) -> None:
        for key in [k for k in self.sessions if k.startswith(prefix)]:
            await self.close(key)

    async def close_all(self) -> None:
        await asyncio.gather(*(self.close(key) for key in list(self.sessions)))
