"""Ends a turn: its working messages become one summary; the question and the answer stay verbatim,
in the conversation and in the REPL's `history`."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage
from langgraph.runtime import Runtime

from langgraph_rlm.graph.config import RLMSettings
from langgraph_rlm.graph.state import RLMState, Turn
from langgraph_rlm.llm.models import chat_model
from langgraph_rlm.llm.replies import clip
from langgraph_rlm.llm.root import ModelCallFailed, call_root
from langgraph_rlm.prompts import render

SUMMARY_WORDS = 200
MESSAGE_CHARS = 2_000


async def compact_memory(state: RLMState, runtime: Runtime[RLMSettings]) -> dict:
    settings = runtime.context
    finished = {"history": [Turn(question=state.query, answer=state.answer or "")]}
    turn = state.messages[state.turn_start :]
    if not settings.compact_turns or len(turn) <= 2:
        return finished
    work = "\n\n".join(f"[{m.type}] {clip(m.text, MESSAGE_CHARS)}" for m in turn[1:])
    request = render("compact_turn", question=state.query, work=work, max_words=SUMMARY_WORDS)
    try:
        summary, usage = await call_root(
            chat_model(settings.model, settings.api_base), [HumanMessage(request)]
        )
    except ModelCallFailed as exc:
        runtime.stream_writer({"event": "warning", "message": f"kept the turn uncompacted: {exc}"})
        return finished
    kept = AIMessage(f"Summary of my work on this question:\n{summary.text}\n\nFinal answer:\n{state.answer}")
    return {
        **finished,
        "messages": [*(RemoveMessage(id=m.id) for m in turn), HumanMessage(state.query), kept],
        "usage": usage,
        "total_usage": usage,
    }
