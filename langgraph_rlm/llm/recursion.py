"""`rlm_query`: a child RLM (this same graph, depth + 1, its own sandbox) answers a sub-question."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING

from langgraph_rlm.llm.budget import SubCallBudget, shared_with_child
from langgraph_rlm.llm.cache import CHILD
from langgraph_rlm.llm.subcalls import ChildRun, ChildRunner, shown_model
from langgraph_rlm.trajectory.records import CHILD_TEXT_CHARS, StepLog

SHOWN_QUESTION = 60

if TYPE_CHECKING:
    from langgraph_rlm.graph.config import RLMSettings
    from langgraph_rlm.graph.resources import Resources


def child_runner(settings: RLMSettings, parent: str, resources: Resources) -> ChildRunner | None:
    """None at the depth limit, where rlm_query becomes a plain sub-model call. The child draws
    its sub-calls from the parent's budget, so the limit holds over the whole tree. The child has
    no checkpoints: its steps are kept from its update stream, in its parent's step record."""
    if settings.depth >= settings.max_depth:
        return None

    async def run_child(prompt: str, context_sha: str | None, budget: SubCallBudget) -> ChildRun:
        from langgraph_rlm.graph.builder import build_rlm_graph
        from langgraph_rlm.persistence.contexts import describe_blob

        child = replace(settings, depth=settings.depth + 1, compact_turns=False, approve_code=False)
        contexts = (
            [await asyncio.to_thread(describe_blob, context_sha, 0, resources.blobs)] if context_sha else []
        )
        key = f"{parent}{CHILD}{uuid.uuid4().hex[:12]}"
        graph = build_rlm_graph(settings=child).compile(checkpointer=False)
        log, result = StepLog(clip_at=CHILD_TEXT_CHARS), {}
        opened = last = time.monotonic()
        try:
            with shared_with_child(budget):
                async for mode, chunk in graph.astream(
                    {"query": prompt, "contexts": contexts},
                    context=child,
                    config={"configurable": {"thread_id": key}, "run_name": run_name(child.depth, prompt)},
                    stream_mode=["updates", "values"],
                ):
                    if mode == "values":
                        result = chunk
                        continue
                    now = time.monotonic()
                    for node, update in chunk.items():
                        log.add(node, update, round(last - opened, 3), round(now - last, 3))
                    last = now
        finally:
            await resources.pool.close_prefix(key)
        model = shown_model(child.root_model())
        return ChildRun(result["answer"], result["usage"], model, log.steps, result.get("stop_reason"))

    return run_child


def run_name(depth: int, prompt: str) -> str:
    """What a child's run is called in a trace, under the execute step whose cell asked it."""
    head = " ".join(prompt.split())
    head = head if len(head) <= SHOWN_QUESTION else head[:SHOWN_QUESTION] + "..."
    return f"rlm_query depth {depth}: {head}"
