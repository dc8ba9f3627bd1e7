"""The root model's call: one step of the conversation, with its usage."""

from __future__ import annotations

import asyncio

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage

from langgraph_rlm.llm.models import chat_model, model_name
from langgraph_rlm.llm.usage import Usage, usage_of


class ModelCallFailed(RuntimeError):
    """The root model could not be reached or gave no usable reply."""


async def call_root_model(
    model: str | BaseChatModel, api_base: str | None, messages: list[BaseMessage]
) -> tuple[AIMessage, Usage]:
    """The root model named by a setting; building a litellm model imports litellm, so off the loop."""
    return await call_root(await asyncio.to_thread(chat_model, model, api_base), messages)


async def call_root(
    model: BaseChatModel, messages: list[BaseMessage], name: str | None = None
) -> tuple[AIMessage, Usage]:
    try:
        reply = await model.ainvoke(messages)
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelCallFailed(f"the root model call failed: {detail}") from exc
    if not isinstance(reply, AIMessage):
        raise ModelCallFailed(f"the root model returned {type(reply).__name__}, not a message")
    return reply, usage_of(reply, name or model_name(model), "root")
