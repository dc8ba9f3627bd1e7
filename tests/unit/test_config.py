from dataclasses import replace

import pytest

from langgraph_rlm.graph.config import RLMSettings, parse_setting


def test_environment_fills_fields_left_at_default(monkeypatch):
    monkeypatch.setenv("RLM_MAX_ITERATIONS", "7")
    monkeypatch.setenv("RLM_COMPACT_TURNS", "no")
    monkeypatch.setenv("RLM_ALLOW_DIRS", "/a:/b")
    monkeypatch.setenv("RLM_API_BASE", "http://127.0.0.1:8000/v1")
    settings = RLMSettings()
    assert settings.max_iterations == 7
    assert settings.compact_turns is False
    assert settings.allow_dirs == ("/a", "/b")
    assert settings.api_base == "http://127.0.0.1:8000/v1"


def test_explicit_values_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("RLM_MAX_ITERATIONS", "7")
    assert RLMSettings(max_iterations=12).max_iterations == 12


@pytest.mark.parametrize(
    ("name", "raw"), [("max_iterations", "ten"), ("compact_turns", "maybe"), ("max_time", "x")]
)
def test_bad_values_say_which_variable(name, raw):
    with pytest.raises(ValueError, match="RLM_"):
        parse_setting(name, raw)


def test_allowed_models_split_on_commas_so_model_tags_keep_their_colons(monkeypatch):
    monkeypatch.setenv("RLM_ALLOWED_MODELS", "ollama/qwen3:8b, openai/gpt-5-nano")
    assert RLMSettings().allowed_models == ("ollama/qwen3:8b", "openai/gpt-5-nano")


def test_depth_models_route_each_depth_and_join_the_allow_list(monkeypatch):
    monkeypatch.setenv("RLM_DEPTH_MODELS", "openai/strong, ollama/qwen3:8b")
    settings = RLMSettings(model="openai/root")
    assert settings.depth_models == ("openai/strong", "ollama/qwen3:8b")
    assert [replace(settings, depth=d).root_model() for d in range(3)] == [
        "openai/strong",
        "ollama/qwen3:8b",
        "openai/root",
    ]
    assert {"openai/strong", "ollama/qwen3:8b"} <= settings.model_names()
