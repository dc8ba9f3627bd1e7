"""Asks the root model for its next step: the prompt describes the contexts, never includes them."""

from __future__ import annotations

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from langgraph_rlm.graph.config import RLMSettings
from langgraph_rlm.graph.state import ContextRef, RLMState
from langgraph_rlm.llm.models import chat_model
from langgraph_rlm.llm.replies import code_blocks
from langgraph_rlm.llm.root import call_root
from langgraph_rlm.prompts import render


async def generate_code(state: RLMState, runtime: Runtime[RLMSettings]) -> dict:
    settings = runtime.context
    asked: list[BaseMessage] = []
    if state.stop_reason:
        asked = [HumanMessage(render("best_answer", reason=state.stop_reason))]
    prompt = [SystemMessage(system_prompt(state.contexts, settings)), *state.messages, *asked]
    reply, usage = await call_root(chat_model(settings.model, settings.api_base), prompt)
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


def system_prompt(contexts: list[ContextRef], settings: RLMSettings) -> str:
    return render(
        "system",
        contexts="\n".join(describe(c) for c in contexts) or "(none yet: the user may name files to load)",
        output_limit=f"{settings.output_limit:,}",
        max_iterations=settings.max_iterations,
    )


def describe(context: ContextRef) -> str:
    origin = f"file {context['label']}" if context["source"] else "text given inline"
    preview = context["preview"][:200].replace("\n", "\\n")
    return f"- {context['name']}: str, {context['size']:,} bytes, {origin}; starts with: {preview!r}"
