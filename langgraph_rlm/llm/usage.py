"""Tokens, calls and dollars, summed over every call of every depth, and broken down by model.

The flat totals are what limits and summaries read; `by_model` ("<depth>:<model>") says where they
came from. A model litellm does not price has cost None there: unknown, never a silent $0, unless
the user gave its price (the `model_prices` setting).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from typing_extensions import TypedDict

from langgraph_rlm.llm import model_table

if TYPE_CHECKING:
    from langchain_core.messages import AIMessage


class ModelUsage(TypedDict):
    calls: int
    input_tokens: int
    output_tokens: int
    cost: float | None
    cache_hits: int


class Usage(TypedDict, total=False):
    input_tokens: int
    output_tokens: int
    cost: float
    root_calls: int
    sub_calls: int
    cache_hits: int
    stored_bytes: int
    by_model: dict[str, ModelUsage]


def add_usage(left: Usage | None, right: Usage | None) -> Usage:
    """The reducer for usage in graph state: every field adds up, `by_model` entry by entry."""
    total: Usage = dict(left or {})  # type: ignore[assignment]
    for key, value in (right or {}).items():
        if key == "by_model":
            total["by_model"] = merge_models(total.get("by_model", {}), value)  # type: ignore[arg-type]
        else:
            total[key] = total.get(key, 0) + value  # type: ignore[literal-required]
    return total


def merge_models(left: dict[str, ModelUsage], right: dict[str, ModelUsage]) -> dict[str, ModelUsage]:
    merged = dict(left)
    for name, entry in right.items():
        if name not in merged:
            merged[name] = dict(entry)  # type: ignore[assignment]
            continue
        mine = merged[name]
        cost = None if mine["cost"] is None or entry["cost"] is None else mine["cost"] + entry["cost"]
        merged[name] = {
            "calls": mine["calls"] + entry["calls"],
            "input_tokens": mine["input_tokens"] + entry["input_tokens"],
            "output_tokens": mine["output_tokens"] + entry["output_tokens"],
            "cost": cost,
            "cache_hits": mine["cache_hits"] + entry["cache_hits"],
        }
    return merged


def call_usage(model: str | None, depth: int, kind: str, input_tokens: int, output_tokens: int) -> Usage:
    """One model call: counted in the totals and under its depth and model."""
    cost = price(model, input_tokens, output_tokens)
    entry: ModelUsage = {
        "calls": 1,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost": cost,
        "cache_hits": 0,
    }
    usage: Usage = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost": cost or 0.0,
        "by_model": {f"{depth}:{model or 'unnamed'}": entry},
    }
    usage["root_calls" if kind == "root" else "sub_calls"] = 1
    return usage


def hits(count: int) -> ModelUsage:
    """Answers from the sub-call cache: no request, no tokens, no dollars."""
    return {"calls": 0, "input_tokens": 0, "output_tokens": 0, "cost": 0.0, "cache_hits": count}


def cache_hit(model: str | None, depth: int) -> Usage:
    return {"cache_hits": 1, "by_model": {f"{depth}:{model or 'unnamed'}": hits(1)}}


def hits_of(usage: Usage) -> Usage:
    """Only the cache hits of `usage`, flat and by model (a child's, which its parent's ledger
    of calls does not hold)."""
    models = {key: hits(e["cache_hits"]) for key, e in usage.get("by_model", {}).items() if e["cache_hits"]}
    return {"cache_hits": usage.get("cache_hits", 0), "by_model": models} if models else {}


def usage_of(message: AIMessage, model: str | None, depth: int, kind: str) -> Usage:
    tokens = message.usage_metadata or {}
    return call_usage(model, depth, kind, tokens.get("input_tokens", 0), tokens.get("output_tokens", 0))


def price(model: str | None, input_tokens: int, output_tokens: int) -> float | None:
    prices = unit_prices(model)
    if prices is None:
        return None
    return prices[0] * input_tokens + prices[1] * output_tokens


PER_MILLION = 1_000_000
_given: dict[str, tuple[float, float]] = {}


def parse_prices(entries: Iterable[str]) -> dict[str, tuple[float, float]]:
    """`MODEL=IN,OUT` entries, dollars per million input and output tokens, as dollars per token;
    ValueError names the entry that is not one."""
    prices = {}
    for entry in entries:
        model, _, amounts = entry.rpartition("=")
        parts = amounts.split(",")
        try:
            numbers = [float(part) for part in parts]
        except ValueError:
            numbers = []
        if not model.strip() or len(numbers) != 2 or min(numbers) < 0:
            raise ValueError(f"{entry}: give MODEL=IN,OUT, dollars per million input and output tokens")
        prices[model.strip()] = (numbers[0] / PER_MILLION, numbers[1] / PER_MILLION)
    return prices


def give_prices(entries: Iterable[str]) -> None:
    """Prices the user gave count for the whole process: a model's price is the same in every run."""
    _given.update(parse_prices(entries))


def unit_prices(model: str | None) -> tuple[float, float] | None:
    """Dollars per input and per output token: the user's price, else litellm's; None when neither."""
    if model in _given:
        return _given[model]
    return model_table.unit_prices(model)


def unpriced(usage: Usage) -> list[str]:
    """The models of this usage whose cost is unknown."""
    models = usage.get("by_model", {})
    return sorted({key.split(":", 1)[1] for key, entry in models.items() if entry["cost"] is None})


_warned: set[str] = set()


def price_warnings(usage: Usage | None) -> list[dict[str, str]]:
    """Stream events for the unpriced models of this usage not yet warned about in this process;
    `unpriced` names the model, so a client can say it once across runs (the CLI does)."""
    fresh = [name for name in unpriced(usage or {}) if name not in _warned]
    _warned.update(fresh)
    return [
        {
            "event": "warning",
            "unpriced": name,
            "message": f"litellm has no price for {name}: cost unknown "
            f"(give one with --model-price {name}=IN,OUT, dollars per million tokens)",
        }
        for name in fresh
    ]
