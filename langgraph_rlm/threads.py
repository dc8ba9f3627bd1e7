"""Threads as the `rlm` command keeps them: one SQLite file of checkpoints under the state dir."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.constants import START
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, StateSnapshot

from langgraph_rlm.graph.builder import build_rlm_graph
from langgraph_rlm.graph.config import RLMSettings
from langgraph_rlm.graph.resources import close_sandboxes, resources_for
from langgraph_rlm.graph.state import ContextRef
from langgraph_rlm.persistence.checkpointer import DATABASE, open_checkpointer, select, store_errors
from langgraph_rlm.persistence.collect import live_blobs, snapshot_blobs, sweep
from langgraph_rlm.persistence.contexts import joined
from langgraph_rlm.persistence.leases import turn_lease

RESUMING = "resuming the unfinished question from its last step"


class UnfinishedTurn(RuntimeError):
    """The thread waits for approval of a cell, and nothing can give it."""


class UnknownCheckpoint(LookupError):
    """`rlm rewind --to` named a checkpoint the thread does not have."""


class BrokenThread(RuntimeError):
    """A checkpoint of the thread cannot be loaded: its bytes are corrupt, or a write it replays
    cannot be applied. Going back to the newest one that loads, or a reset, recovers the thread."""

    def __init__(self, thread: str, cause: Exception) -> None:
        why = " ".join(f"{type(cause).__name__}: {cause}".split())
        name = shlex.quote(thread)
        super().__init__(
            f"thread {thread!r} cannot be loaded ({why[:160]}); `rlm rewind --thread {name}` takes it back "
            f"to its newest checkpoint that loads, `rlm reset --thread {name}` forgets it"
        )


async def loaded_state(graph: CompiledStateGraph, config: dict[str, Any]) -> StateSnapshot:
    """The thread's state at `config`, or BrokenThread when its checkpoint cannot be loaded."""
    try:
        return await graph.aget_state(config)
    except store_errors():
        raise
    except Exception as exc:
        raise BrokenThread(config["configurable"]["thread_id"], exc) from exc


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
    wait: float = 0.0,
) -> str:
    """Asks one question on a thread, or finishes the same question if a crash interrupted it.
    A different question leaves an unfinished one in the conversation, where `rlm rewind` can
    go back to it; one that was answered but not yet summarised is finished first. `approve`
    answers each request for approval of a cell (`approve_code`) while the sandboxes stay up,
    so the REPL the cell runs in is the one the person saw. The turn holds the thread's lease
    from before it reads the thread, approvals included, waiting up to `wait` seconds for a
    busy thread (then ThreadBusy)."""

    def say(message: str) -> None:
        on_event({"event": "warning", "message": message})

    async with (
        turn_lease(settings.db, settings.state_dir, thread, wait, say),
        open_thread_graph(settings) as graph,
    ):
        config = thread_config(thread, settings)
        current = await loaded_state(graph, config)
        asked = await question_asked(graph, current)
        payload: dict[str, Any] | None = {"query": question, "contexts": paths}
        try:
            if asked == question:
                on_event({"event": "warning", "message": RESUMING})
                payload = None
            elif asked == current.values.get("query") and current.values.get("answer") is not None:
                await run_to_end(graph, None, config, settings, without_answers(on_event), approve)
            elif asked is not None:
                on_event({"event": "warning", "message": left_behind(thread, current, asked)})
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
        ended = await loaded_state(graph, config)
        if not ended.interrupts:
            return ended.values
        if approve is None:
            thread = config["configurable"]["thread_id"]
            raise UnfinishedTurn(f"thread {thread!r} waits for approval of a cell: ask again with --approve")
        given = Command(resume=await approve(ended.interrupts[0].value))


def unfinished(snapshot: StateSnapshot) -> bool:
    """Whether the thread stopped mid-question. A step whose nodes all finished but whose own
    checkpoint was never written (the process died in between) names no `next` node: only its
    tasks, whose writes were kept, say that the question goes on."""
    return bool(snapshot.next or snapshot.tasks)


async def question_asked(graph: CompiledStateGraph, head: StateSnapshot) -> str | None:
    """The question the thread stopped in the middle of, if any. One whose process died before
    its first node ran is still only the input of its first checkpoint, not in the state."""
    if not unfinished(head):
        return None
    if head.next == (START,):
        saved = await graph.checkpointer.aget_tuple(head.config)
        return (saved.checkpoint["channel_values"].get(START) or {}).get("query") if saved else None
    return head.values.get("query")


def without_answers(on_event: Callable[[dict], None]) -> Callable[[dict], None]:
    """An earlier turn's events, finished on the way to a new question: its answer was shown."""
    return lambda event: None if event.get("event") == "answer" else on_event(event)


def left_behind(thread: str, unfinished: StateSnapshot, question: str | None) -> str:
    """The warning for a question left unfinished, naming the command that goes back to it."""
    checkpoint = unfinished.config["configurable"]["checkpoint_id"]
    command = shlex.join(["rlm", "rewind", "--thread", thread, "--to", checkpoint])
    return (
        f"thread {thread} has an unfinished question ({question!r}); this one starts "
        f"a new turn after it. To go back and finish it instead: {command}, then ask it again"
    )


def changing(settings: RLMSettings, thread: str, say: Callable[[str], None]) -> AbstractAsyncContextManager:
    """The lease a command that changes a thread outside a run holds (rewind, init, reset): such a
    change under a running question would be lost or break the thread, so a busy thread is
    ThreadBusy at once, never waited for."""
    return turn_lease(settings.db, settings.state_dir, thread, 0.0, say)


async def rewind_thread(
    settings: RLMSettings, thread: str, checkpoint: str | None, say: Callable[[str], None]
) -> StateSnapshot | None:
    """Makes a copy of one of the thread's checkpoints its newest, so the next run continues from
    there: a question that checkpoint was working on resumes when asked again. Every checkpoint
    stays, the ones after it included. With no `checkpoint`, the newest one that loads: a thread
    whose newest cannot be loaded goes back to where it last could be. Returns the thread's new
    head, or None when its newest checkpoint is the one to go back to."""
    async with changing(settings, thread, say), open_thread_graph(settings) as graph:
        if checkpoint is None:
            ids = [row[0] for row in await select(graph.checkpointer, CHECKPOINT_IDS, thread)]
            if not ids:
                raise UnknownCheckpoint(f"no thread named {thread!r}")
            checkpoint = await newest_loadable(graph, thread, ids)
            if checkpoint == ids[0]:
                return None
        named = {"configurable": {"thread_id": thread, "checkpoint_ns": "", "checkpoint_id": checkpoint}}
        saved = await graph.checkpointer.aget_tuple(named)
        if saved is None:
            raise UnknownCheckpoint(f"thread {thread!r} has no checkpoint {checkpoint!r}")
        await graph.aupdate_state(saved.config, None, as_node="__copy__")
        return await loaded_state(graph, thread_config(thread, settings))


CHECKPOINT_IDS = (
    "SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = '' "
    "ORDER BY checkpoint_id DESC"
)


async def newest_loadable(graph: CompiledStateGraph, thread: str, ids: list[str]) -> str:
    """The first of `ids` (newest first) whose checkpoint loads."""
    for checkpoint in ids:
        try:
            await loaded_state(graph, {"configurable": {"thread_id": thread, "checkpoint_id": checkpoint}})
        except BrokenThread:
            continue
        return checkpoint
    raise UnknownCheckpoint(f"thread {thread!r} has no checkpoint that loads (`rlm reset` forgets it)")


async def add_contexts(
    settings: RLMSettings, thread: str, refs: list[ContextRef], say: Callable[[str], None]
) -> list[ContextRef]:
    """Adds stored contexts (persistence.contexts.ingest) to a thread without asking anything (`rlm init`)."""
    async with changing(settings, thread, say), open_thread_graph(settings) as graph:
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
        values = (await loaded_state(graph, thread_config(thread, settings))).values
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
            rows.append({"thread": thread, "ts": state.created_at or "", "unfinished": unfinished(state)})
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
    return [row[0] for row in await select(saver, THREAD_NAMES)]


class Reset(NamedTuple):
    blobs: int
    bytes: int
    unreadable: set[str]
    """Threads with a checkpoint that cannot be read: while there is one, no blob is collected."""


async def reset_thread(settings: RLMSettings, thread: str, say: Callable[[str], None]) -> Reset | None:
    """Forgets a thread and its sub-call answers, whatever state it is in: its checkpoints are
    deleted, never loaded. Blobs no other checkpoint refers to are collected. None when there is
    no such thread."""
    if not has_threads(settings):
        return None
    async with changing(settings, thread, say), open_checkpointer(settings) as saver:
        if not await select(saver, CHECKPOINT_IDS, thread):
            return None
        await saver.adelete_thread(thread)
        resources = await resources_for(settings)
        await asyncio.to_thread(resources.answers.forget, thread)
        live, unreadable = await live_blobs(saver, resources.blobs)
    if unreadable:
        return Reset(0, 0, unreadable)
    return Reset(*sweep(resources.blobs, live, grace_seconds=0), unreadable)
