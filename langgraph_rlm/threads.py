"""Threads as the `rlm` command keeps them: one SQLite file of checkpoints under the state dir."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from langgraph_rlm.graph.builder import build_rlm_graph
from langgraph_rlm.graph.config import RLMSettings
from langgraph_rlm.graph.resources import close_sandboxes, resources_for
from langgraph_rlm.graph.state import ContextRef
from langgraph_rlm.persistence.checkpointer import DATABASE, open_checkpointer
from langgraph_rlm.persistence.collect import live_blobs, snapshot_blobs, sweep
from langgraph_rlm.persistence.contexts import ingest


class UnfinishedTurn(RuntimeError):
    """The thread stopped mid-question, and a different question was asked."""


@asynccontextmanager
async def open_thread_graph(settings: RLMSettings) -> AsyncIterator[CompiledStateGraph]:
    async with open_checkpointer(settings) as saver:
        yield build_rlm_graph(settings=settings).compile(checkpointer=saver)


def has_threads(settings: RLMSettings) -> bool:
    return bool(settings.db) or (Path(settings.state_dir) / DATABASE).exists()


def thread_config(thread: str, settings: RLMSettings) -> dict[str, Any]:
    """Enough graph steps for every iteration; the graph ends itself with a best answer before that."""
    return {"configurable": {"thread_id": thread}, "recursion_limit": settings.max_iterations * 3 + 20}


async def run_turn(
    settings: RLMSettings,
    thread: str,
    question: str,
    paths: list[str],
    on_event: Callable[[dict], None],
    approve: Callable[[dict], Awaitable[dict]] | None = None,
) -> str:
    """Asks one question on a thread, or finishes the same question if a crash interrupted it.
    `approve` answers each request for approval of a cell (`approve_code`) while the sandboxes
    stay up, so the REPL the cell runs in is the one the person saw."""
    async with open_thread_graph(settings) as graph:
        config = thread_config(thread, settings)
        current = await graph.aget_state(config)
        payload: dict[str, Any] | Command | None = {"query": question, "contexts": paths}
        if current.next:
            if current.values.get("query") != question:
                raise UnfinishedTurn(
                    f"thread {thread!r} has an unfinished question ({current.values.get('query')!r}); "
                    "ask it again to resume it, or use another --thread"
                )
            on_event({"event": "warning", "message": "resuming the unfinished question from its last step"})
            payload = None
        try:
            while True:
                async for event in graph.astream(payload, config, context=settings, stream_mode="custom"):
                    on_event(event)
                ended = await graph.aget_state(config)
                waiting = ended.interrupts
                if not waiting:
                    break
                if approve is None:
                    raise UnfinishedTurn(
                        f"thread {thread!r} waits for approval of a cell: ask again with --approve"
                    )
                payload = Command(resume=await approve(waiting[0].value))
        finally:
            await close_sandboxes()
        values = ended.values
    finish = getattr(on_event, "finish", None)
    if finish is not None:
        finish(values.get("usage", {}), values.get("stop_reason"))
    return values["answer"]


async def add_contexts(settings: RLMSettings, thread: str, files: list[Path]) -> list[ContextRef]:
    """Stores files as contexts of a thread without asking anything (`rlm init`)."""
    async with open_thread_graph(settings) as graph:
        config = thread_config(thread, settings)
        stored = [
            c for c in (await graph.aget_state(config)).values.get("contexts", []) if isinstance(c, dict)
        ]
        known = {c["sha"] for c in stored}
        blobs = (await resources_for(settings)).blobs
        added: list[ContextRef] = []
        for file in files:
            ref = await asyncio.to_thread(ingest, str(file), len(stored) + len(added), blobs)
            if ref["sha"] not in known:
                known.add(ref["sha"])
                added.append(ref)
        if added:
            await graph.aupdate_state(config, {"contexts": added}, as_node="compact_memory")
        return added


async def thread_values(settings: RLMSettings, thread: str) -> dict[str, Any] | None:
    """The thread's state, plus `snapshot_bytes`: what its REPL snapshot stores beyond the contexts."""
    if not has_threads(settings):
        return None
    async with open_thread_graph(settings) as graph:
        values = (await graph.aget_state(thread_config(thread, settings))).values
    if not values:
        return None
    snapshot = values.get("repl", {}).get("snapshot")
    if snapshot:
        blobs = (await resources_for(settings)).blobs
        contexts = {c["sha"] for c in values.get("contexts", []) if isinstance(c, dict)}
        values["snapshot_bytes"] = sum(blobs.size(sha) for sha in snapshot_blobs(snapshot, blobs) - contexts)
    return values


async def list_threads(settings: RLMSettings) -> list[dict[str, Any]]:
    """Each thread's newest checkpoint: its last question, steps, contexts and usage."""
    if not has_threads(settings):
        return []
    newest: dict[str, Any] = {}
    async with open_thread_graph(settings) as graph:
        async for saved in graph.checkpointer.alist(None):
            configurable = saved.config["configurable"]
            thread, namespace = configurable["thread_id"], configurable.get("checkpoint_ns", "")
            if namespace == "" and (thread not in newest or saved.checkpoint["ts"] > newest[thread]["ts"]):
                newest[thread] = {"ts": saved.checkpoint["ts"], **saved.checkpoint.get("channel_values", {})}
    return [
        {"thread": thread, **values} for thread, values in sorted(newest.items(), key=lambda t: t[1]["ts"])
    ]


async def reset_thread(settings: RLMSettings, thread: str) -> tuple[int, int]:
    """Forgets a thread and its sub-call answers; blobs no other checkpoint refers to are collected.
    Returns (blobs, bytes)."""
    async with open_thread_graph(settings) as graph:
        await graph.checkpointer.adelete_thread(thread)
        resources = await resources_for(settings)
        await asyncio.to_thread(resources.answers.forget, thread)
        blobs = resources.blobs
        return sweep(blobs, await live_blobs(graph.checkpointer, blobs), grace_seconds=0)
