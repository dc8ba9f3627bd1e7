"""Tokens, calls and dollars, summed over the root model and every sub-call."""

from __future__ import annotations

from langchain_core.messages import AIMessage
from typing_extensions import TypedDict


class Usage(TypedDict, total=False):
    input_tokens: int
    output_tokens: int
    cost: float
    root_calls: int
    sub_calls: int
    cache_hits: int
    stored_bytes: int


def add_usage(left: Usage | None, right: Usage | None) -> Usage:
    """The reducer for usage in graph state: every field adds up."""
    total: Usage = dict(left or {})  # type: ignore[assignment]
    for key, value in (right or {}).items():
        total[key] = total.get(key, 0) + value  # type: ignore[literal-required]
    return total


def usage_of(message: AIMessage, model_name: str | None, kind: str) -> Usage:
    tokens = message.usage_metadata or {}
    input_tokens, output_tokens = tokens.get("input_tokens", 0), tokens.get("output_tokens", 0)
    usage: Usage = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost": price(model_name, input_tokens, output_tokens),
    }
    usage["root_calls" if kind == "root" else "sub_calls"] = 1
    return usage


def price(model_name: str | None, input_tokens: int, output_tokens: int) -> float:
    """Dollars from litellm's price table; 0.0 for models it does not know."""
    if not model_name or not (input_tokens or output_tokens):
        return 0.0
    from langgraph_rlm.llm.models import import_litellm

    litellm = import_litellm()
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=model_name, prompt_tokens=input_tokens, completion_tokens=output_tokens
        )
    except Exception:
        return 0.0
    return float(prompt_cost + completion_cost)
