"""A thread's trajectory, read from its checkpoints alone: any store, any sandbox backend.

Each checkpoint keeps the writes of the node that ran from it, and the time it was taken; a
node's duration is the time between its checkpoint and the next. Only the thread's current
branch is read (a time-travel fork's abandoned steps are not).
"""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from typing import Any

from langgraph.types import StateSnapshot
from typing_extensions import TypedDict

from langgraph_rlm.graph.config import RLMSettings
from langgraph_rlm.llm.usage import Usage
from langgraph_rlm.threads import has_threads, open_thread_graph, thread_config
from langgraph_rlm.trajectory.records import StepLog, StepRecord


class Question(TypedDict, total=False):
    question: str
    started: str
    seconds: float
    steps: list[StepRecord]
    answer: str | None
    stop_reason: str | None
    compactions: int
    usage: Usage


class Trajectory(TypedDict):
    thread: str
    usage: Usage
    questions: list[Question]


async def read_trajectory(settings: RLMSettings, thread: str) -> Trajectory | None:
    """None when there is no such thread."""
    if not has_threads(settings):
        return None
    async with open_thread_graph(settings) as graph:
        snapshots = [s async for s in graph.aget_state_history(thread_config(thread, settings))]
    if not snapshots:
        return None
    chain = current_branch(snapshots)
    questions: list[Question] = []
    log, opened = StepLog(), 0.0
    for before, after in pairwise(chain):
        started = seconds_of(before)
        for task in before.tasks:
            if task.name == "start_turn":
                log, opened = StepLog(), started
                questions.append({"question": after.values.get("query", ""), "started": before.created_at})
            elif questions:
                log.add(
                    task.name, task.result, round(started - opened, 3), round(seconds_of(after) - started, 3)
                )
        if questions and before.tasks:
            finish(questions[-1], log, after.values, round(seconds_of(after) - opened, 3))
    return {"thread": thread, "usage": chain[-1].values.get("total_usage", {}), "questions": questions}


def current_branch(snapshots: list[StateSnapshot]) -> list[StateSnapshot]:
    """Oldest first, from the newest checkpoint back along its parents."""
    by_id = {s.config["configurable"]["checkpoint_id"]: s for s in snapshots}
    chain: list[StateSnapshot] = []
    node: StateSnapshot | None = snapshots[0]
    while node is not None:
        chain.append(node)
        parent = (node.parent_config or {}).get("configurable", {}).get("checkpoint_id")
        node = by_id.get(parent) if parent else None
    return chain[::-1]


def finish(question: Question, log: StepLog, values: dict[str, Any], seconds: float) -> None:
    question.update(
        seconds=seconds,
        steps=log.steps,
        answer=values.get("answer"),
        stop_reason=values.get("stop_reason") or log.stop_reason,
        compactions=log.compactions,
        usage=values.get("usage", {}),
    )


def seconds_of(snapshot: StateSnapshot) -> float:
    return datetime.fromisoformat(snapshot.created_at or "").timestamp()
