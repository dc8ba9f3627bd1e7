"""A thread's trajectory, read from its checkpoints alone: any store, any sandbox backend.

Each checkpoint keeps the writes of the node that ran from it, and the time it was taken; a
node's duration is the time between its checkpoint and the next. Only the thread's current
branch is read, from its newest checkpoint back along its parents: a time-travel fork's
abandoned steps are not, nor the broken ones a thread was rewound past.
"""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from typing import Any

from langgraph.graph.state import CompiledStateGraph
from langgraph.types import StateSnapshot
from typing_extensions import TypedDict

from langgraph_rlm.graph.config import RLMSettings
from langgraph_rlm.llm.usage import Usage
from langgraph_rlm.threads import has_threads, loaded_state, open_thread_graph, thread_config
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
        chain = await current_branch(graph, thread_config(thread, settings))
    if not chain:
        return None
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


async def current_branch(graph: CompiledStateGraph, config: dict[str, Any]) -> list[StateSnapshot]:
    """Oldest first; BrokenThread when one of them cannot be loaded."""
    node = await loaded_state(graph, config)
    chain: list[StateSnapshot] = []
    seen: set[str] = set()
    while node.metadata is not None and node.config["configurable"]["checkpoint_id"] not in seen:
        chain.append(node)
        seen.add(node.config["configurable"]["checkpoint_id"])
        if node.parent_config is None:
            break
        node = await loaded_state(graph, node.parent_config)
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
