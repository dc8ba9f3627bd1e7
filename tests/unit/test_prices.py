"""Prices the user gives: parsed from MODEL=IN,OUT (dollars per million tokens), and then used
for that model's cost instead of "unknown"."""

from __future__ import annotations

import pytest

from langgraph_rlm.llm.usage import call_usage, give_prices, parse_prices, unit_prices


def test_a_price_is_dollars_per_million_tokens():
    assert parse_prices(["ollama/qwen3:8b=0.5,1.5"]) == {"ollama/qwen3:8b": (0.5e-6, 1.5e-6)}


@pytest.mark.parametrize("entry", ["ollama/qwen3", "ollama/qwen3=1", "=1,2", "m=a,b", "m=1,2,3", "m=-1,2"])
def test_a_bad_price_says_what_a_price_looks_like(entry):
    with pytest.raises(ValueError, match="MODEL=IN,OUT"):
        parse_prices([entry])


def test_a_given_price_makes_the_cost_known():
    assert (
        call_usage("openai/unpriced-test-model", 0, "root", 1000, 100)["by_model"][
            "0:openai/unpriced-test-model"
        ]["cost"]
        is None
    )
    give_prices(["openai/unpriced-test-model=2,4"])
    assert unit_prices("openai/unpriced-test-model") == (2e-6, 4e-6)
    usage = call_usage("openai/unpriced-test-model", 0, "root", 1000, 100)
    assert usage["cost"] == pytest.approx(0.0024)
