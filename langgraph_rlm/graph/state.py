"""What the graph keeps: references to contexts and REPL snapshots, never their bulk."""

from __future__ import annotations

import functools
import logging
import operator
from dataclasses import dataclass, field
from typing import Annotated, Any, NotRequired

from langchain_core.messages import AnyMessage, RemoveMessage
from langgraph.channels.delta import DeltaChannel
from langgraph.channels.ephemeral_value import EphemeralValue
from langgraph.graph.message import REMOVE_ALL_MESSAGES, add_messages
from langgraph.managed import RemainingSteps
from pydantic import Field
from typing_extensions import TypedDict

from langgraph_rlm.llm.usage import Usage, add_usage
from langgraph_rlm.nodes.approval import Review
from langgraph_rlm.persistence.contexts import ContextRef
from langgraph_rlm.trajectory.records import SubCalls

log = logging.getLogger(__name__)


def add_message_batches(messages: list[AnyMessage], batches: list[Any]) -> list[AnyMessage]:
    """`add_messages` over a batch of writes: checkpoints then store each step's new messages
    once, not the whole conversation again at every step."""
    for batch in batches:
        messages = add_messages(messages, without_unknown_removals(messages, batch))
    return messages


def without_unknown_removals(messages: list[AnyMessage], batch: Any) -> Any:
    """A removal of a message the conversation does not have is skipped, where `add_messages`
    would raise on every load of the thread from then on. Two runs of one step from one
    checkpoint store the first run's messages (the key of a write is its checkpoint, task and
    index, and the first write wins); the other run goes on with messages of its own, and its
    compaction then removes ids that replaying the stored writes never made."""
    if not isinstance(batch, list) or not any(isinstance(m, RemoveMessage) for m in batch):
        return batch
    known = {m.id for m in messages} | {REMOVE_ALL_MESSAGES}
    kept = []
    for message in batch:
        if isinstance(message, RemoveMessage) and message.id not in known:
            skipped_removal(message.id)
            continue
        known.add(getattr(message, "id", None))
        kept.append(message)
    return kept


@functools.cache
def skipped_removal(message_id: str | None) -> None:
    """Said once a process: the thread is replayed at every load."""
    log.warning("skipped removing message %s, which the conversation does not have", message_id)


class ReplRef(TypedDict):
    """The REPL namespace as of this checkpoint: the snapshot to restore, and what is in it."""

    snapshot: str | None
    variables: list[dict[str, Any]]
    sandbox: NotRequired[str | None]


def add_contexts(left: list[ContextRef | str], right: list[ContextRef | str]) -> list[ContextRef | str]:
    """New contexts (paths, text, or references to text stored at the graph's entry) queue up
    behind the ones already stored."""
    return [*(left or []), *(right or [])]


class Turn(TypedDict):
    """An earlier question of the thread and its exact answer, as the REPL's `history` shows it."""

    question: str
    answer: str


class RLMInput(TypedDict):
    query: Annotated[str, Field(description="The question; later questions on a thread see earlier answers.")]
    contexts: NotRequired[
        Annotated[
            list[str],
            Field(
                description="What to ask about, as text (or a file's path where the operator allows "
                "paths); each becomes a variable of the REPL, never part of the prompt."
            ),
        ]
    ]


class RLMOutput(TypedDict):
    answer: Annotated[str, Field(description="The answer the REPL delivered with FINAL / FINAL_VAR.")]
    usage: Annotated[Usage, Field(description="Calls, tokens and dollars of this question, every depth.")]
    stop_reason: Annotated[
        str, Field(description="final, or the limit that ended the question (e.g. max_iterations).")
    ]


@dataclass
class RLMState:
    query: str = ""
    contexts: Annotated[list[ContextRef | str], add_contexts] = field(default_factory=list)
    messages: Annotated[list[AnyMessage], DeltaChannel(add_message_batches)] = field(default_factory=list)
    history: Annotated[list[Turn], operator.add] = field(default_factory=list)
    repl: ReplRef = field(default_factory=lambda: ReplRef(snapshot=None, variables=[]))
    session: str = ""
    pending_code: list[str] = field(default_factory=list)
    iteration: int = 0
    turn_start: int = 0
    started_at: float = 0.0
    approve_code: bool = False
    review: Review | None = None
    active_seconds: Annotated[float, operator.add] = 0.0
    usage: Annotated[Usage, add_usage] = field(default_factory=dict)
    total_usage: Annotated[Usage, add_usage] = field(default_factory=dict)
    answer: str | None = None
    stop_reason: str | None = None
    limit_hit: str | None = None
    subcalls: Annotated[SubCalls | None, EphemeralValue(dict)] = None
    """The last step's sub-calls for `rlm trace`: stored with that step alone, gone the step after."""
    remaining_steps: RemainingSteps = 25
