"""What a run's context may change: the operator's models and lower limits, nothing else."""

from __future__ import annotations

import pytest

from langgraph_rlm.graph.config import RLMSettings
from langgraph_rlm.graph.run_settings import PER_RUN, RunContext, RunSettingsError, settings_for_run

OPERATOR = RLMSettings(
    model="openai/strong",
    sub_model="openai/cheap",
    allowed_models=("openai/other",),
    api_base="http://127.0.0.1:8000/v1",
    max_iterations=10,
    max_time=600.0,
    memory_limit=1024,
)


def test_a_partial_context_merges_over_the_operators_settings():
    run = settings_for_run(OPERATOR, {"max_iterations": 3, "sub_model": "openai/other", "user_id": "u1"})
    assert (run.max_iterations, run.sub_model) == (3, "openai/other")
    assert (run.model, run.api_base, run.max_time) == ("openai/strong", "http://127.0.0.1:8000/v1", 600.0)


@pytest.mark.parametrize(
    ("context", "words"),
    [
        ({"api_base": "http://evil/v1"}, ["api_base", "deployment", "RLM_API_BASE"]),
        ({"sandbox": "process"}, ["sandbox", "deployment"]),
        ({"state_dir": "/"}, ["state_dir", "deployment"]),
        ({"db": "postgresql://evil"}, ["db", "deployment"]),
        ({"allow_dirs": ["/"]}, ["allow_dirs", "deployment"]),
        ({"allowed_models": ["x/y"]}, ["allowed_models", "deployment"]),
        ({"docker_image": "evil"}, ["docker_image", "deployment"]),
        ({"e2b_workdir": "/"}, ["e2b_workdir", "deployment"]),
        ({"path_contexts": True}, ["path_contexts", "deployment"]),
        ({"depth_models": ["openai/x"]}, ["depth_models", "deployment"]),
        ({"max_iterations": 11}, ["max_iterations", "operator's 10"]),
        ({"memory_limit": 0}, ["memory_limit", "between 1"]),
        ({"max_iterations": "3"}, ["max_iterations", "number"]),
        ({"max_iterations": 2.5}, ["max_iterations", "number"]),
        ({"max_iterations": True}, ["max_iterations", "number"]),
        ({"compact_turns": "yes"}, ["compact_turns", "true or false"]),
        ({"compact_threshold": 2}, ["compact_threshold"]),
        ({"model": "oobabooga/http://127.0.0.1:9/x"}, ["model", "operator's models"]),
        ({"sub_model": {"name": "x"}}, ["sub_model", "operator's models"]),
    ],
)
def test_what_a_run_may_not_set_is_refused_in_one_line(context, words):
    with pytest.raises(RunSettingsError) as refused:
        settings_for_run(OPERATOR, context)
    message = str(refused.value)
    assert "\n" not in message and all(word in message for word in words), message


def test_a_context_that_is_not_an_object_is_refused():
    with pytest.raises(RunSettingsError, match="object of settings"):
        settings_for_run(OPERATOR, ["max_iterations", 1])


def test_settings_from_python_apply_where_they_differ_from_the_class_defaults():
    run = settings_for_run(OPERATOR, RLMSettings(max_iterations=50, sandbox="process"))
    assert (run.max_iterations, run.sandbox, run.model) == (50, "process", "openai/strong")


def test_the_published_context_schema_holds_only_per_run_settings_with_descriptions():
    from pydantic import TypeAdapter

    schema = TypeAdapter(RunContext).json_schema()
    assert set(schema["properties"]) == set(PER_RUN)
    assert all(prop.get("description") for prop in schema["properties"].values())
    assert schema["properties"]["model"]["type"] == "string"


def test_a_run_may_set_a_token_or_dollar_limit_but_never_lift_the_operators():
    assert settings_for_run(OPERATOR, {"max_tokens": 5000, "max_cost": 0.5}).max_tokens == 5000
    limited = RLMSettings(max_tokens=10_000, max_cost=1.0)
    assert settings_for_run(limited, {"max_tokens": 5000}).max_tokens == 5000
    for context in ({"max_tokens": 0}, {"max_tokens": 20_000}, {"max_cost": 0}, {"max_cost": 2.0}):
        with pytest.raises(RunSettingsError, match="operator's"):
            settings_for_run(limited, context)


def test_a_run_may_ask_for_approval_of_code_but_never_skip_the_operators():
    assert settings_for_run(OPERATOR, {"approve_code": True}).approve_code is True
    required = RLMSettings(approve_code=True)
    assert settings_for_run(required, {"approve_code": True}).approve_code is True
    with pytest.raises(RunSettingsError, match="'approve_code': the operator turned it on"):
        settings_for_run(required, {"approve_code": False})
