"""Threads as the `rlm` command keeps them: one SQLite file of checkpoints under the state dir."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, StateSnapshot

from langgraph_rlm.graph.builder import build_rlm_graph
from langgraph_rlm.graph.config import RLMSettings
from langgraph_rlm.graph.resources import close_sandboxes, resources_for
from langgraph_rlm.graph.state import ContextRef
from langgraph_rlm.persistence.checkpointer import DATABASE, open_checkpointer
from langgraph_rlm.persistence.collect import live_blobs, snapshot_blobs, sweep
from langgraph_rlm.persistence.contexts import joined

RESUMING = "resuming the unfinished question from its last step"


class UnfinishedTurn(RuntimeError):
    """The thread waits for approval of a cell, and nothing can give it."""


class UnknownCheckpoint(LookupError):
    """`rlm rewind --to` named a checkpoint the thread does not have."""


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
    A different question leaves an unfinished one in the conversation, where `rlm rewind` can
    go back to it; one that was answered but not yet summarised is finished first. `approve`
    answers each request for approval of a cell (`approve_code`) while the sandboxes stay up,
    so the REPL the cell runs in is the one the person saw."""
    async with open_thread_graph(settings) as graph:
        config = thread_config(thread, settings)
        current = await graph.aget_state(config)
        payload: dict[str, Any] | None = {"query": question, "contexts": paths}
        try:
            if current.next and current.values.get("query") == question:
                on_event({"event": "warning", "message": RESUMING})
                payload = None
            elif current.values.get("answer") is not None and current.next:
                await run_to_end(graph, None, config, settings, without_answers(on_event), approve)
            elif current.next:
                on_event({"event": "warning", "message": left_behind(thread, current)})
            values = await run_to_end(graph, payload, config, settings, on_event, approve)
        finally:
            await close_sandboxes()
    finish = getattr(on_event, "finish", None)
    if finish is not None:
        finish(values.get("usage", {}), values.get("stop_reason"))
    return values["answer"]


async def run_to_end(
    graph: CompiledStateGraph,
    payload: dict[str, Any] | None,
    config: dict[str, Any],
    settings: RLMSettings,
    on_event: Callable[[dict], None],
    approve: Callable[[dict], Awaitable[dict]] | None,
) -> dict[str, Any]:
    """Runs the graph until the turn ends, answering each approval request on the way."""
    given: dict[str, Any] | Command | None = payload
    while True:
        async for event in graph.astream(given, config, context=settings, stream_mode="custom"):
            on_event(event)
        ended = await graph.aget_state(config)
        if not ended.interrupts:
            return ended.values
        if approve is None:
            thread = config["configurable"]["thread_id"]
            raise UnfinishedTurn(f"thread {thread!r} waits for approval of a cell: ask again with --approve")
        given = Command(resume=await approve(ended.interrupts[0].value))


def without_answers(on_event: Callable[[dict], None]) -> Callable[[dict], None]:
    """An earlier turn's events, finished on the way to a new question: its answer was shown."""
    return lambda event: None if event.get("event") == "answer" else on_event(event)


def left_behind(thread: str, unfinished: StateSnapshot) -> str:
    """The warning for a question left unfinished, naming the command that goes back to it."""
    checkpoint = unfinished.config["configurable"]["checkpoint_id"]
    command = shlex.join(["rlm", "rewind", "--thread", thread, "--to", checkpoint])
    return (
        f"thread {thread} has an unfinished question ({unfinished.values.get('query')!r}); this one starts "
        f"a new turn after it. To go back and finish it instead: {command}, then ask it again"
    )


async def rewind_thread(settings: RLMSettings, thread: str, checkpoint: str) -> StateSnapshot:
    """Makes a copy of one of the thread's checkpoints its newest, so the next run continues from
    there: a question that checkpoint was working on resumes when asked again. Every checkpoint
    stays, the ones after it included. Returns the thread's new head."""
    async with open_thread_graph(settings) as graph:
        named = {"configurable": {"thread_id": thread, "checkpoint_ns": "", "checkpoint_id": checkpoint}}
        saved = await graph.checkpointer.aget_tuple(named)
        if saved is None:
            raise UnknownCheckpoint(f"thread {thread!r} has no checkpoint {checkpoint!r}")
        await graph.aupdate_state(saved.config, None, as_node="__copy__")
        return await graph.aget_state(thread_config(thread, settings))


async def add_contexts(settings: RLMSettings, thread: str, refs: list[ContextRef]) -> list[ContextRef]:
    """Adds stored contexts (persistence.contexts.ingest) to a thread without asking anything (`rlm init`)."""
    async with open_thread_graph(settings) as graph:
        config = thread_config(thread, settings)
        stored = [
            c for c in (await graph.aget_state(config)).values.get("contexts", []) if isinstance(c, dict)
        ]
        added = joined(stored, refs)
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


async def list_threads(settings: RLMSettings, hidden: str | None = None) -> tuple[list[dict[str, Any]], int]:
    """Each thread's newest checkpoint, oldest first: its last question, steps, contexts and usage;
    `unfinished` when a question stopped midway (asking it again resumes it), `broken` (why) when
    the checkpoint cannot be read. Threads named `hidden`* are counted, not loaded."""
    if not has_threads(settings):
        return [], 0
    rows: list[dict[str, Any]] = []
    async with open_thread_graph(settings) as graph:
        names = await thread_names(graph.checkpointer)
        shown = [name for name in names if not (hidden and name.startswith(hidden))]
        for thread in shown:
            try:
                state = await graph.aget_state(thread_config(thread, settings))
            except Exception as exc:
                rows.append({"thread": thread, "ts": "", "broken": f"{type(exc).__name__}: {exc}"})
                continue
            rows.append({"thread": thread, "ts": state.created_at or "", "unfinished": bool(state.next)})
            rows[-1].update(state.values)
    return rows, len(names) - len(shown)


THREAD_NAMES = (
    "SELECT thread_id FROM checkpoints WHERE checkpoint_ns = '' "
    "GROUP BY thread_id ORDER BY max(checkpoint_id)"
)


async def thread_names(saver: BaseCheckpointSaver) -> list[str]:
    """Every thread, the one with the oldest last step first (checkpoint ids grow with time), read
    from LangGraph's `checkpoints` table without loading a checkpoint: one that cannot be loaded
    is still listed."""
    if isinstance(saver, AsyncSqliteSaver):
        await saver.setup()
        async with saver.conn.execute(THREAD_NAMES) as cursor:
            return [row[0] for row in await cursor.fetchall()]
    async with saver.conn.cursor() as cursor:  # type: ignore[attr-defined]
        await cursor.execute(THREAD_NAMES)
        return [row["thread_id"] for row in await cursor.fetchall()]


async def reset_thread(settings: RLMSettings, thread: str) -> tuple[int, int]:
    """Forgets a thread and its sub-call answers; blobs no other checkpoint refers to are collected.
    Returns (blobs, bytes)."""
    async with open_thread_graph(settings) as graph:
        await graph.checkpointer.adelete_thread(thread)
        resources = await resources_for(settings)
        await asyncio.to_thread(resources.answers.forget, thread)
        blobs = resources.blobs
        return sweep(blobs, await live_blobs(graph.checkpointer, blobs), grace_seconds=0)
