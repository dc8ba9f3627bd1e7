"""Keeps the root prompt small.

At the end of a turn, its working messages become one summary; the question and the exact answer
stay verbatim, in the conversation and in the REPL's `history`. The answer is announced before
the summary is asked for, so a caller can show it without waiting for a model call. Mid-question,
when the prompt nears the model's window, the older steps become a summary and the work goes on.
"""

from __future__ import annotations

from typing import Literal

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, RemoveMessage
from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import Command

from langgraph_rlm.graph.config import RLMSettings
from langgraph_rlm.graph.resources import end_of_run
from langgraph_rlm.graph.state import RLMState, Turn
from langgraph_rlm.llm.budget import LimitReached, question_budget
from langgraph_rlm.llm.replies import clip
from langgraph_rlm.llm.root import ModelCallFailed, call_root_model
from langgraph_rlm.llm.root_prompt import best_answer_chars, compaction_budget
from langgraph_rlm.prompts import render

SUMMARY_WORDS = 250
MESSAGE_CHARS = 2_000
CHARS_PER_TOKEN = 3
WORK_CHARS = 60_000


async def compact_memory(
    state: RLMState, runtime: Runtime[RLMSettings]
) -> Command[Literal["generate_code", "__end__"]]:
    if state.answer is None:
        return Command(update=await compact_working(state, runtime), goto="generate_code")
    runtime.stream_writer({"event": "answer", "answer": state.answer, "stop_reason": state.stop_reason})
    update = await finish_turn(state, runtime)
    await end_of_run(runtime.context, state.session)
    return Command(update=update, goto=END)


async def finish_turn(state: RLMState, runtime: Runtime[RLMSettings]) -> dict:
    finished = {"history": [Turn(question=state.query, answer=state.answer or "")]}
    turn = state.messages[state.turn_start :]
    if not runtime.context.compact_turns or len(turn) <= 2:
        return finished
    runtime.stream_writer({"event": "summarising"})
    summary = await summarise("compact_turn", turn[1:], state, runtime)
    if summary is None:
        return finished
    text, usage = summary
    kept = AIMessage(f"Summary of my work on this question:\n{text}\n\nFinal answer:\n{state.answer}")
    return {
        **finished,
        "messages": [*forget(turn[1:]), kept],
        "usage": usage,
        "total_usage": usage,
    }


async def compact_working(state: RLMState, runtime: Runtime[RLMSettings]) -> dict:
    """Older steps become one summary; the last step's code and output stay verbatim."""
    work = state.messages[state.turn_start + 1 :]
    last_code, last_output = work[-2], work[-1]
    summary = await summarise("compact_working", work[:-2], state, runtime)
    if summary is None:
        return {}
    text, usage = summary
    runtime.stream_writer({"event": "compacted", "messages": len(work) - 2})
    note = AIMessage(
        f"Summary of my earlier steps on this question:\n{text}\n\nMy latest step:\n{last_code.text}"
    )
    return {
        "messages": [*forget(work), note, HumanMessage(last_output.text)],
        "usage": usage,
        "total_usage": usage,
    }


async def summarise(
    prompt: str, messages: list[AnyMessage], state: RLMState, runtime: Runtime[RLMSettings]
) -> tuple[str, dict] | None:
    """The summary and its usage; None (the messages stay as they are) when the call fails or
    the question's budget cannot afford it."""
    settings = runtime.context
    budget = await compaction_budget(settings)
    room = min(WORK_CHARS, budget * CHARS_PER_TOKEN // 2) if budget else WORK_CHARS
    work = clip("\n\n".join(f"[{m.type}] {clip(m.text, MESSAGE_CHARS)}" for m in messages), room)
    request = render(prompt, question=state.query, work=work, max_words=SUMMARY_WORDS)
    held = None if state.answer else best_answer_chars(state.contexts, state.messages, settings, 0)
    try:
        reply, usage = await call_root_model(
            settings.root_model(),
            settings.api_base,
            [HumanMessage(request)],
            budget=question_budget(settings, state.usage, held),
            depth=settings.depth,
            internal=True,
        )
    except (ModelCallFailed, LimitReached) as exc:
        runtime.stream_writer({"event": "warning", "message": f"kept the messages uncompacted: {exc}"})
        return None
    return reply.text, usage


def forget(messages: list[AnyMessage]) -> list[RemoveMessage]:
    return [RemoveMessage(id=m.id) for m in messages]
