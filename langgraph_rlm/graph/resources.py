"""What the nodes share within a process: the blob store, the sub-call answers and the live sandboxes."""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, replace
from pathlib import Path

from langgraph_rlm.graph.config import RLMSettings
from langgraph_rlm.graph.state import ContextRef, ReplRef
from langgraph_rlm.llm.cache import SubCallCache, root_thread
from langgraph_rlm.persistence.answers import AnswerStore, open_answer_store
from langgraph_rlm.persistence.blobs import BlobStore, open_blob_store
from langgraph_rlm.sandboxes import make_sandbox
from langgraph_rlm.sandboxes.base import Sandbox, SandboxSpec
from langgraph_rlm.sandboxes.file_gate import FileGate
from langgraph_rlm.sandboxes.pool import SandboxPool
from langgraph_rlm.sandboxes.session import ReplSession


@dataclass
class Resources:
    blobs: BlobStore
    pool: SandboxPool
    answers: AnswerStore

    def sub_call_cache(self, settings: RLMSettings, session: str) -> SubCallCache | None:
        """A run without a thread can never come back, so it keeps no answers."""
        if not settings.cache_sub_calls or session.startswith(ONE_SHOT):
            return None
        return SubCallCache(self.answers, root_thread(session), settings.api_base)

    async def session(
        self, key: str, settings: RLMSettings, contexts: list[ContextRef], reconnect: str | None = None
    ) -> ReplSession:
        """The thread's live session, created on first use; its file gate follows the contexts."""
        files = [Path(c["source"]) for c in contexts if c["source"]]
        spec = SandboxSpec(
            memory_mb=settings.memory_limit,
            max_processes=settings.max_processes,
            visible_files=tuple(files),
            docker_image=settings.docker_image,
            cpus=settings.cpus,
            e2b_workdir=settings.e2b_workdir,
            e2b_pause=settings.e2b_pause,
            reconnect=reconnect,
        )
        gate = FileGate(files, [Path(d) for d in settings.allow_dirs])
        shas = [c["sha"] for c in contexts]
        session = await self.pool.session(
            key, lambda: ReplSession(lambda: self._sandbox(settings.sandbox, spec, shas), self.blobs, gate)
        )
        session.gate.allow(files)
        session.restore_seconds = settings.cell_timeout
        return session

    def _sandbox(self, kind: str, spec: SandboxSpec, shas: list[str]) -> Sandbox:
        """The contexts the session started with are bound into every sandbox it starts, where
        the store keeps them as files; contexts a later turn adds are sent as before."""
        bound = {sha: path for sha in shas if (path := self.blobs.file_of(sha)) is not None}
        return make_sandbox(kind, replace(spec, bound_blobs=bound))

    async def warm(self, key: str, settings: RLMSettings, contexts: list[ContextRef], repl: ReplRef) -> None:
        """The thread's sandbox starts (or its REPL restores) while the root model writes the step."""
        session = await self.session(key, settings, contexts, repl.get("sandbox"))
        session.warm(repl["snapshot"])


ONE_SHOT = "once:"
"""Marks a session no later run can come back to, closed when its run ends."""


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Resources]] = (
    weakref.WeakKeyDictionary()
)


async def resources_for(settings: RLMSettings) -> Resources:
    """Live sandboxes belong to the event loop that started them, so each loop has its own pool.
    Opening a store touches disk or network, so it happens off the loop."""
    per_loop = _by_loop.setdefault(asyncio.get_running_loop(), {})
    key = settings.db or settings.state_dir
    if key not in per_loop:
        blobs = await asyncio.to_thread(open_blob_store, settings.db, Path(settings.state_dir))
        answers = await asyncio.to_thread(open_answer_store, settings.db, Path(settings.state_dir))
        pool = SandboxPool(settings.sandbox_idle_timeout, settings.max_sandboxes, scope=key)
        per_loop.setdefault(key, Resources(blobs, pool, answers))
    return per_loop[key]


async def end_of_run(settings: RLMSettings, session: str) -> None:
    """A session no later run can come back to ends with its run instead of idling on."""
    if session.startswith(ONE_SHOT):
        await (await resources_for(settings)).pool.close(session)


async def close_sandboxes() -> None:
    """Stops every live sandbox of this event loop (their snapshots stay stored)."""
    for resources in _by_loop.get(asyncio.get_running_loop(), {}).values():
        await resources.pool.close_all()
