"""The root model's call: one step of the conversation, with its usage."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.constants import TAG_NOSTREAM

from langgraph_rlm.llm.budget import SubCallBudget
from langgraph_rlm.llm.models import chat_model, model_name
from langgraph_rlm.llm.retry import ModelCallError, named, with_retries
from langgraph_rlm.llm.tracing import root_call_run
from langgraph_rlm.llm.usage import Usage, usage_of


class ModelCallFailed(RuntimeError):
    """The root model could not be reached or gave no usable reply."""


async def call_root_model(
    model: str | BaseChatModel,
    api_base: str | None,
    messages: list[BaseMessage],
    retries: int = 0,
    *,
    budget: SubCallBudget,
    depth: int,
    internal: bool = False,
) -> tuple[AIMessage, Usage]:
    """One root call, tried again `retries` times after a transient failure, reserved from the
    question's budget first (LimitReached when it does not fit). Building a litellm model imports
    litellm, which blocks, so off the loop. An `internal` call (a summary) is not streamed to
    clients as if it were the model's step."""
    llm = await asyncio.to_thread(chat_model, model, api_base)
    name = model_name(llm)
    reservation = await budget.reserve(name, sum(len(m.text) for m in messages), depth)
    options: dict[str, Any] = {}
    if reservation.output is not None:
        options["max_tokens"] = reservation.output
    config: RunnableConfig = {"tags": [TAG_NOSTREAM]} if internal else {}
    usage: Usage | None = None
    traced = root_call_run(model, messages, depth)
    try:
        with traced.calling():
            reply = await with_retries(
                lambda: llm.ainvoke(messages, config, **options),
                retries=retries,
                model=named(model, api_base),
            )
        if not isinstance(reply, AIMessage):
            raise ModelCallFailed(f"the root model returned {type(reply).__name__}, not a message")
        usage = usage_of(reply, name, depth, "root")
        traced.end(reply.text, usage)
    except ModelCallError as exc:
        raise ModelCallFailed(f"the root model call failed: {exc}") from exc
    finally:
        budget.settle(reservation, usage)
    return reply, usage
