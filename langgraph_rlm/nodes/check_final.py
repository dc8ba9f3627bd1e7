"""Decides what comes after a step: the answer is in, a limit is reached, or another step; while
the step's blocks wait for a person's answers (nodes/approval.py), the step goes on asking."""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime
from langgraph.types import Command

from langgraph_rlm.graph.config import RLMSettings
from langgraph_rlm.graph.state import RLMState
from langgraph_rlm.llm.budget import inherited_budget
from langgraph_rlm.llm.replies import without_code
from langgraph_rlm.llm.root_prompt import compaction_budget, prompt_tokens, root_prompt

Next = Literal["execute", "generate_code", "compact_memory"]
STEPS_TO_FINISH = 5
MIN_WORK_TO_COMPACT = 4


async def check_final(state: RLMState, runtime: Runtime[RLMSettings]) -> Command[Next]:
    if state.review:
        return Command(goto="execute")
    if state.answer is not None:
        return Command(update={"stop_reason": state.stop_reason or "final"}, goto="compact_memory")
    if state.stop_reason:
        return Command(update={"answer": last_reply_text(state)}, goto="compact_memory")
    limit = reached_limit(state, runtime.context)
    if limit:
        runtime.stream_writer({"event": "limit", "reason": limit})
        return Command(update={"stop_reason": limit}, goto="generate_code")
    if await nears_the_window(state, runtime.context):
        return Command(goto="compact_memory")
    return Command(goto="generate_code")


async def nears_the_window(state: RLMState, settings: RLMSettings) -> bool:
    """Whether the next root prompt passes the compaction threshold, with older steps to condense."""
    budget = await compaction_budget(settings)
    working = len(state.messages) - state.turn_start - 1
    if budget is None or working < MIN_WORK_TO_COMPACT:
        return False
    return prompt_tokens(root_prompt(state.contexts, state.messages, settings)) > budget


def reached_limit(state: RLMState, settings: RLMSettings) -> str | None:
    if state.remaining_steps <= STEPS_TO_FINISH:
        return "recursion_limit (raise the run config's recursion_limit)"
    if state.iteration >= settings.max_iterations:
        return f"max_iterations ({settings.max_iterations} steps)"
    shared = inherited_budget()
    if state.usage.get("sub_calls", 0) >= settings.max_sub_calls or (shared is not None and shared.left <= 0):
        return f"max_sub_calls ({settings.max_sub_calls} sub-model calls)"
    hit = state.limit_hit or (shared.reached if shared is not None else None)
    if hit:
        return hit
    tokens = state.usage.get("input_tokens", 0) + state.usage.get("output_tokens", 0)
    if 0 < settings.max_tokens <= tokens:
        return f"max_tokens ({settings.max_tokens} tokens, reached at depth {settings.depth})"
    if 0 < settings.max_cost <= state.usage.get("cost", 0.0):
        return f"max_cost (${settings.max_cost:g}, reached at depth {settings.depth})"
    if state.active_seconds >= settings.max_time:
        return f"max_time ({settings.max_time:g} seconds)"
    return None


def last_reply_text(state: RLMState) -> str:
    """The best answer after a limit: the last reply's prose, or "" when there is none (no
    answer, which the caller reports as such)."""
    for message in reversed(state.messages):
        if message.type == "ai":
            return without_code(message.text)
    return ""
