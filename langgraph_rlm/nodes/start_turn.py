"""Opens a turn: stores any new contexts by content and puts the question in the conversation."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime
from langgraph.types import Overwrite

from langgraph_rlm.graph.config import RLMSettings
from langgraph_rlm.graph.resources import ONE_SHOT, resources_for
from langgraph_rlm.graph.state import ContextRef, RLMState
from langgraph_rlm.persistence.contexts import Intake, checked_ref, ingest, joined, unnamed


async def start_turn(state: RLMState, config: RunnableConfig, runtime: Runtime[RLMSettings]) -> dict:
    settings = runtime.context
    blobs = (await resources_for(settings)).blobs
    folders = None if settings.path_contexts else [Path(d) for d in settings.allow_dirs]
    warnings: list[str] = []
    intake = Intake(warn=warnings.append, folder_limit_mb=settings.max_folder_mb)
    stored: list[ContextRef] = []
    for item in state.contexts:
        if isinstance(item, str):
            refs = unnamed(await asyncio.to_thread(ingest, item, 0, blobs, folders, intake))
        else:
            refs = [await asyncio.to_thread(checked_ref, item, blobs, folders)]
        stored += joined(stored, refs)
    for warning in warnings:
        runtime.stream_writer({"event": "warning", "message": warning})
    return {
        "contexts": Overwrite(stored),
        "messages": [HumanMessage(state.query)],
        "session": state.session or session_key(config),
        "turn_start": len(state.messages),
        "iteration": 0,
        "started_at": time.time(),
        "active_seconds": Overwrite(0.0),
        "approve_code": settings.approve_code,
        "usage": Overwrite({}),
        "answer": None,
        "stop_reason": None,
        "limit_hit": None,
        "pending_code": [],
        "review": None,
    }


def session_key(config: RunnableConfig) -> str:
    """The sandbox pool's key. A thread, and a subgraph with a checkpointer of its own (its
    namespace carries no task id), come back to their REPL. A run without a thread, or a subgraph
    without a checkpointer (a new namespace each call, one per parallel `Send` branch), gets a
    sandbox of its own that ends with the run."""
    configurable = config.get("configurable", {})
    thread = configurable.get("thread_id")
    if thread is None:
        return f"{ONE_SHOT}run-{uuid.uuid4().hex}"
    parents = configurable.get("checkpoint_ns", "").split("|")[:-1]
    key = "|".join([str(thread), *parents])
    return f"{ONE_SHOT}{key}" if any(":" in part for part in parents) else key
