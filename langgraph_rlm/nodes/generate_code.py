"""Asks the root model for its next step: the prompt describes the contexts, never includes them."""

from __future__ import annotations

from langchain_core.messages import BaseMessage, HumanMessage
from langgraph.runtime import Runtime

from langgraph_rlm.graph.config import RLMSettings
from langgraph_rlm.graph.state import RLMState
from langgraph_rlm.llm.replies import code_blocks
from langgraph_rlm.llm.root import call_root_model
from langgraph_rlm.llm.root_prompt import root_prompt
from langgraph_rlm.prompts import render


async def generate_code(state: RLMState, runtime: Runtime[RLMSettings]) -> dict:
    settings = runtime.context
    asked: list[BaseMessage] = []
    if state.stop_reason:
        asked = [HumanMessage(render("best_answer", reason=state.stop_reason))]
    prompt = root_prompt(state.contexts, [*state.messages, *asked], settings)
    reply, usage = await call_root_model(settings.model, settings.api_base, prompt, settings.sub_call_retries)
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
