"""Asks the root model for its next step: the prompt describes the contexts, never includes them."""

from __future__ import annotations

from langchain_core.messages import BaseMessage, HumanMessage
from langgraph.runtime import Runtime

from langgraph_rlm.graph.config import RLMSettings
from langgraph_rlm.graph.resources import resources_for
from langgraph_rlm.graph.state import RLMState
from langgraph_rlm.llm.budget import LimitReached, question_budget
from langgraph_rlm.llm.replies import code_blocks
from langgraph_rlm.llm.root import call_root_model
from langgraph_rlm.llm.root_prompt import best_answer_chars, root_prompt
from langgraph_rlm.llm.usage import price_warnings
from langgraph_rlm.prompts import render

REPLY_CHARS = 4_000


async def generate_code(state: RLMState, runtime: Runtime[RLMSettings]) -> dict:
    """When the question's budget cannot afford the step, the question stops there. Every other
    root step leaves room for the best answer; should even that not fit, the last reply is the
    answer: a limit never lets one more call through."""
    settings = runtime.context
    asked: list[BaseMessage] = []
    if state.stop_reason:
        asked = [HumanMessage(render("best_answer", reason=state.stop_reason))]
    prompt = root_prompt(state.contexts, [*state.messages, *asked, *first_look(state)], settings)
    room = None
    if not state.stop_reason:
        await (await resources_for(settings)).warm(state.session, settings, state.contexts, state.repl)
        room = best_answer_chars(
            state.contexts, state.messages, settings, REPLY_CHARS + settings.output_limit
        )
    try:
        reply, usage = await call_root_model(
            settings.root_model(),
            settings.api_base,
            prompt,
            settings.sub_call_retries,
            budget=question_budget(settings, state.usage, room),
            depth=settings.depth,
        )
    except LimitReached as exc:
        if not state.stop_reason:
            runtime.stream_writer({"event": "limit", "reason": exc.reason})
        return {"stop_reason": state.stop_reason or exc.reason, "pending_code": []}
    for warning in price_warnings(usage):
        runtime.stream_writer(warning)
    blocks = code_blocks(reply.text)
    runtime.stream_writer(
        {"event": "step", "iteration": state.iteration + 1, "blocks": blocks, "usage": usage}
    )
    return {
        "messages": [*asked, reply],
        "pending_code": blocks,
        "iteration": state.iteration + 1,
        "usage": usage,
        "total_usage": usage,
    }


def first_look(state: RLMState) -> list[BaseMessage]:
    """Said in the prompt of a question's first step only: left to themselves, small models
    answer before they look, or copy a context's opening words as the answer."""
    if state.stop_reason or len(state.messages) > state.turn_start + 1:
        return []
    return [HumanMessage(render("first_step"))]
