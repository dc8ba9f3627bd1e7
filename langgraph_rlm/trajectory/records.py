"""The shape of a trajectory: steps, and the sub-calls each step made, child RLMs nested.

A root step is read back from the checkpoints; a sub-call and a child RLM's steps are kept only in
the record the execute node writes once per step, so that record is small: previews, not prompts,
and at most MAX_CALLS calls in detail (the rest counted).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from typing_extensions import TypedDict

from langgraph_rlm.llm.replies import clip
from langgraph_rlm.llm.usage import Usage, add_usage

PREVIEW_CHARS = 300
CHILD_TEXT_CHARS = 2_000
MAX_CALLS = 100


class CallRecord(TypedDict, total=False):
    """One llm_query (or rlm_query answered by a single call), or one child RLM with its steps.
    `start` is seconds after the step's code began; `cost` None: litellm has no price."""

    kind: Literal["llm", "rlm"]
    model: str
    depth: int
    input_tokens: int
    output_tokens: int
    cost: float | None
    start: float
    seconds: float
    cached: bool
    prompt: str
    answer: str
    error: str
    steps: list[StepRecord]
    stop_reason: str | None


class StepRecord(TypedDict, total=False):
    """One root-model reply and what running its code did. `start` is seconds after the question
    began; `limit` is the limit that stopped the question at this step."""

    step: int
    start: float
    model_seconds: float
    repl_seconds: float
    asked: str
    reply: str
    code: list[str]
    output: str
    calls: list[CallRecord]
    calls_omitted: int
    usage: Usage
    limit: str


class SubCalls(TypedDict):
    """What the execute node writes once per step: its calls in order of their start."""

    calls: list[CallRecord]
    omitted: int


class CallLog:
    """The calls of one step, as they finish (concurrent ones in any order)."""

    def __init__(self) -> None:
        self.opened = time.monotonic()
        self.calls: list[CallRecord] = []
        self.omitted = 0

    def keep(self, record: CallRecord, started: float, usage: Usage | None = None) -> None:
        if len(self.calls) >= MAX_CALLS:
            self.omitted += 1
            return
        record["start"] = round(started - self.opened, 3)
        record["seconds"] = round(time.monotonic() - started, 3)
        for key in ("prompt", "answer", "error"):
            if key in record:
                record[key] = clip(record[key], PREVIEW_CHARS)  # type: ignore[literal-required]
        models = list((usage or {}).get("by_model", {}).values())
        record["input_tokens"] = (usage or {}).get("input_tokens", 0)
        record["output_tokens"] = (usage or {}).get("output_tokens", 0)
        record["cost"] = None if any(m["cost"] is None for m in models) else (usage or {}).get("cost", 0.0)
        self.calls.append(record)

    def written(self) -> SubCalls:
        return {"calls": sorted(self.calls, key=lambda call: call["start"]), "omitted": self.omitted}


class StepLog:
    """Builds steps from the graph's node updates, in the order the nodes ran: from a child's
    update stream as it runs, or from a thread's checkpoints afterwards. `clip_at` bounds each
    text when the steps go into a checkpoint."""

    def __init__(self, clip_at: int | None = None) -> None:
        self.clip_at = clip_at
        self.steps: list[StepRecord] = []
        self.answer: str | None = None
        self.stop_reason: str | None = None
        self.compactions = 0

    def add(self, node: str, update: dict[str, Any] | None, start: float, seconds: float) -> None:
        update = update or {}
        if node == "generate_code":
            self._reply(update, start, seconds)
        elif node == "execute" and self.steps:
            self._ran(update, seconds)
        elif node == "compact_memory" and "history" not in update and update.get("messages"):
            self.compactions += 1
        if isinstance(update.get("answer"), str):
            self.answer = update["answer"]
        reason = update.get("stop_reason") or update.get("limit_hit")
        if isinstance(reason, str):
            self.stop_reason = reason
            if reason != "final" and self.steps and "limit" not in self.steps[-1]:
                self.steps[-1]["limit"] = reason

    def _reply(self, update: dict[str, Any], start: float, seconds: float) -> None:
        step: StepRecord = {"step": len(self.steps) + 1, "start": start, "model_seconds": seconds}
        for message in update.get("messages") or []:
            text = self._text(message_text(message))
            if message_type(message) == "ai":
                step["reply"] = text
            else:
                step["asked"] = text
        step["code"] = [self._text(code) for code in update.get("pending_code") or []]
        step["usage"] = update.get("usage") or {}
        if "reply" not in step and update.get("stop_reason"):
            step["limit"] = update["stop_reason"]
        self.steps.append(step)

    def _ran(self, update: dict[str, Any], seconds: float) -> None:
        step = self.steps[-1]
        step["repl_seconds"] = step.get("repl_seconds", 0.0) + seconds
        outputs = [message_text(m) for m in update.get("messages") or [] if message_type(m) == "human"]
        if outputs:
            step["output"] = self._text("\n".join(outputs))
        subcalls = update.get("subcalls") or {}
        if subcalls.get("calls"):
            step["calls"] = subcalls["calls"]
        if subcalls.get("omitted"):
            step["calls_omitted"] = subcalls["omitted"]
        step["usage"] = add_usage(step.get("usage"), plain_usage(update.get("usage")))

    def _text(self, text: str) -> str:
        return text if self.clip_at is None else clip(text, self.clip_at)


def message_text(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else message.content
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content or [])


def message_type(message: Any) -> str:
    return message.get("type", "") if isinstance(message, dict) else message.type


def plain_usage(usage: Any) -> Usage:
    """A usage write; start_turn's reset (an Overwrite) counts as nothing."""
    return usage if isinstance(usage, dict) else {}
