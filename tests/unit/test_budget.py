"""The question's token budget: reserved before a call, settled after, never overdrawn."""

from __future__ import annotations

import asyncio

import pytest

from langgraph_rlm.llm.budget import LimitReached, SubCallBudget
from langgraph_rlm.llm.usage import add_usage, call_usage


async def test_concurrent_calls_wait_for_room_instead_of_overdrawing():
    budget = SubCallBudget(100, max_tokens=2_000, tokens_left=2_000)
    peak = spent = 0
    held = 0

    async def call(n: int) -> None:
        nonlocal peak, spent, held
        reservation = await budget.reserve("openai/unpriced", 600, depth=1)
        held += reservation.tokens
        peak = max(peak, held)
        await asyncio.sleep(0.01)
        held -= reservation.tokens
        spent += 150
        budget.branch().settle(reservation, call_usage("openai/unpriced", 1, "sub", 100, 50))

    await asyncio.gather(*(call(n) for n in range(6)))
    assert peak <= 2_000 and spent == 900
    assert (
        budget.ledger["input_tokens"] == 600 and budget.ledger["by_model"]["1:openai/unpriced"]["calls"] == 6
    )
    with pytest.raises(LimitReached) as reached:
        await budget.reserve("openai/unpriced", 3_300, depth=2)
    assert reached.value.reason == "max_tokens (2000 tokens, reached at depth 2)"
    assert budget.reached == reached.value.reason


def test_an_unpriced_model_stays_unknown_when_usage_adds_up():
    priced = call_usage("openai/gpt-4o-mini", 0, "root", 1000, 100)
    unpriced = call_usage("openai/scripted", 0, "sub", 1000, 100)
    total = add_usage(add_usage(priced, unpriced), unpriced)
    assert total["by_model"]["0:openai/scripted"]["cost"] is None
    assert total["by_model"]["0:openai/scripted"]["calls"] == 2
    assert total["cost"] == pytest.approx(priced["cost"]) and priced["cost"] > 0
