"""The table of provider variables that lets a missing key be said without importing litellm
agrees with litellm's own check, whichever of a provider's ways to authenticate is set: a
litellm upgrade that changes a provider's variables fails here."""

from __future__ import annotations

import os

import pytest

from langgraph_rlm.llm.models import PROVIDER_KEYS, import_litellm, missing_credentials

CHECKED = {name for choices in PROVIDER_KEYS.values() for names in choices for name in names}


def settings_of(provider: str) -> list[dict[str, str]]:
    """Nothing set, then each of the provider's ways set alone."""
    return [{}, *({name: "x" for name in names} for names in PROVIDER_KEYS[provider])]


@pytest.mark.parametrize("provider", sorted(PROVIDER_KEYS))
def test_the_table_agrees_with_litellm(provider, monkeypatch):
    litellm = import_litellm()
    model = f"{provider}/some-model"
    for key in [*os.environ]:
        if key in CHECKED or key.endswith("_API_KEY"):
            monkeypatch.delenv(key)
    for environment in settings_of(provider):
        with monkeypatch.context() as patched:
            for key, value in environment.items():
                patched.setenv(key, value)
            expected = litellm.validate_environment(model=model)["missing_keys"]
            missing = missing_credentials(model, None)
            assert bool(missing) == bool(expected), environment
            assert set(missing) <= set(expected)  # one way to authenticate is named, not every one


def test_a_blank_variable_counts_as_missing_and_a_local_server_needs_no_key(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", " ")
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    assert missing_credentials("anthropic/claude-sonnet-4-5", None) == ["ANTHROPIC_API_KEY"]
    assert missing_credentials("anthropic/claude-sonnet-4-5", "http://127.0.0.1:8000") == []
    monkeypatch.delenv("OLLAMA_API_BASE", raising=False)
    assert missing_credentials("ollama/qwen3", "http://127.0.0.1:11434") == []
