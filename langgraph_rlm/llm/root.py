"""The root model's call: one step of the conversation, with its usage."""

from __future__ import annotations

import asyncio

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage

from langgraph_rlm.llm.models import chat_model, model_name
from langgraph_rlm.llm.retry import ModelCallError, named, with_retries
from langgraph_rlm.llm.usage import Usage, usage_of


class ModelCallFailed(RuntimeError):
    """The root model could not be reached or gave no usable reply."""


async def call_root_model(
    model: str | BaseChatModel, api_base: str | None, messages: list[BaseMessage], retries: int = 0
) -> tuple[AIMessage, Usage]:
    """One root call, tried again `retries` times after a transient failure. Building a litellm
    model imports litellm, which blocks, so off the loop."""
    llm = await asyncio.to_thread(chat_model, model, api_base)
    try:
        reply = await with_retries(lambda: llm.ainvoke(messages), retries=retries, model=named(model))
    except ModelCallError as exc:
        raise ModelCallFailed(f"the root model call failed: {exc}") from exc
    if not isinstance(reply, AIMessage):
        raise ModelCallFailed(f"the root model returned {type(reply).__name__}, not a message")
    return reply, usage_of(reply, model_name(llm), "root")
