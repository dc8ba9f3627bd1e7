"""What one run may choose for itself.

A run's `context` comes from whoever calls the graph; on a LangGraph server that is a remote
caller. It may pick among the operator's models, lower the operator's limits and turn safeguards
(approval of code) on, never off. Where code runs, which endpoint and credentials are used, where
state is kept and which host folders are readable belong to the operator alone (environment,
`build_rlm_graph` arguments).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Annotated, Any

from pydantic import Field
from typing_extensions import TypedDict

from langgraph_rlm.graph.config import POSITIVE_SETTINGS, RLMSettings

MODELS = ("model", "sub_model")
LIMITS = (
    "max_iterations",
    "max_sub_calls",
    "max_tokens",
    "max_reply_tokens",
    "max_cost",
    "max_time",
    "max_depth",
    "cell_timeout",
    "memory_limit",
    "max_processes",
    "cpus",
    "max_stored_mb",
    "output_limit",
    "batch_concurrency",
    "child_concurrency",
    "sub_call_retries",
)
NO_LIMIT_AT_ZERO = ("max_tokens", "max_reply_tokens", "max_cost")
CHOICES = ("compact_threshold", "compact_turns", "cache_sub_calls")
SAFEGUARDS = ("approve_code",)
PER_RUN = (*MODELS, *LIMITS, *CHOICES, *SAFEGUARDS)


class RunSettingsError(ValueError):
    """A run's context that cannot be used; the message is one line for the caller."""


def _schema_type(name: str) -> type:
    spec = next(f for f in fields(RLMSettings) if f.name == name)
    kind = str if name in MODELS else type(spec.metadata["default"])
    return Annotated[kind, Field(description=spec.metadata["description"])]  # type: ignore[return-value]


RunContext = TypedDict(  # type: ignore[misc]
    "RunContext", {name: _schema_type(name) for name in PER_RUN}, total=False
)
"""The graph's context schema: the settings a run may set, each described for LangGraph Studio."""


def settings_for_run(defaults: RLMSettings, context: Any) -> RLMSettings:
    """The operator's settings with the run's choices applied.

    An `RLMSettings` comes from Python in the operator's own process: its fields that differ from
    the class defaults apply, whatever they are. A mapping comes from a caller: unknown keys (a
    server adds its own, such as `user_id`) are ignored, deployment settings and anything past the
    operator's limits are refused before the run does anything.
    """
    if context is None or context == defaults:
        return defaults
    if isinstance(context, RLMSettings):
        baseline = RLMSettings()
        names = [f.name for f in fields(context)]
        chosen = {n: getattr(context, n) for n in names if getattr(context, n) != getattr(baseline, n)}
        return replace(defaults, **chosen)
    if not isinstance(context, Mapping):
        raise RunSettingsError(f"a run's context must be an object of settings, not {type(context).__name__}")
    deployment = {f.name: f.metadata["env"] for f in fields(RLMSettings) if f.name not in PER_RUN}
    changes: dict[str, Any] = {}
    for key, value in context.items():
        if key in deployment:
            raise RunSettingsError(
                f"context key {key!r} is a deployment setting: only the operator sets it "
                f"({deployment[key]} or build_rlm_graph)"
            )
        if key in PER_RUN:
            changes[key] = checked(key, value, defaults)
    return replace(defaults, **changes)


def checked(key: str, value: Any, defaults: RLMSettings) -> Any:
    """The value if the run may choose it; RunSettingsError naming the key otherwise."""
    if key in MODELS:
        allowed = defaults.model_names()
        if not isinstance(value, str) or value not in allowed:
            raise RunSettingsError(
                f"context key {key!r}: {str(value)[:80]!r} is not one of the operator's models "
                f"({', '.join(sorted(allowed))})"
            )
        return value
    kind = type(getattr(defaults, key))
    if kind is bool:
        if not isinstance(value, bool):
            raise RunSettingsError(f"context key {key!r} must be true or false, not {value!r:.40}")
        if key in SAFEGUARDS and getattr(defaults, key) and not value:
            raise RunSettingsError(
                f"context key {key!r}: the operator turned it on; a run may not turn it off"
            )
        return value
    numeric = (int,) if kind is int else (int, float)
    if isinstance(value, bool) or not isinstance(value, numeric):
        raise RunSettingsError(f"context key {key!r} must be a number ({kind.__name__}), not {value!r:.40}")
    if key == "compact_threshold":
        if not 0 < value <= 1:
            raise RunSettingsError("context key 'compact_threshold' must be above 0 and at most 1")
        return float(value)
    floor = 1 if key in POSITIVE_SETTINGS else 0
    ceiling = getattr(defaults, key)
    if key in NO_LIMIT_AT_ZERO:
        if ceiling == 0 and value >= 0:
            return kind(value)
        floor = 1 if kind is int else 0.000001
    if not floor <= value <= ceiling:
        raise RunSettingsError(
            f"context key {key!r} must be between {floor} and the operator's {ceiling}, not {value}"
        )
    return kind(value)
