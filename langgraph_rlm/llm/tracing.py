"""Model calls in a LangSmith trace: each sub-call is an LLM run under the execute step whose
cell made it, each root call one under its node (see root_call_run).

A litellm string is called without LangChain, so nothing would trace it; the run is made here,
under the execute node's run taken from its config (the cell's requests are served in tasks of
their own). A chat model object gets the same run and its own LangChain run is left out, so every
sub-call looks alike and none is traced twice. A prompt is kept up to TRACED_PROMPT_CHARS: a
cell that sends a 10 MB context to a hundred sub-calls must not upload a gigabyte of trace.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig, ensure_config

from langgraph_rlm.llm.usage import Usage

if TYPE_CHECKING:
    from langsmith.run_trees import RunTree

RUN_NAME = "llm_query"
ROOT_RUN_NAME = "root model"
NEW_MESSAGES = 2
TRACED_PROMPT_CHARS = 16_384


def step_run(config: RunnableConfig | None) -> RunTree | None:
    """The run of the node `config` belongs to; None when the run is not traced."""
    if not config:
        return None
    from langsmith.run_trees import RunTree

    return RunTree.from_runnable_config(dict(config))


class ModelCallRun:
    """One model call's run, or nothing when its step is not traced."""

    def __init__(
        self,
        parent: RunTree | None,
        name: str,
        model: str | BaseChatModel,
        messages: list[dict[str, str]],
        metadata: dict[str, Any],
        *,
        cached: bool = False,
    ) -> None:
        self.run: RunTree | None = None
        if parent is None:
            return
        self.run = parent.create_child(
            name,
            "llm",
            inputs={"messages": messages},
            extra={"metadata": {**model_params(model), **metadata, "cached": cached}},
            tags=["cached"] if cached else None,
        )
        self.run.post()

    @contextlib.contextmanager
    def calling(self) -> Iterator[None]:
        """Around the model call: a failure (a cancellation too) ends the run with its error, and
        a chat model object's own run, which would repeat this one, is left out."""
        if self.run is None:
            yield
            return
        from langsmith.run_helpers import tracing_context

        try:
            with tracing_context(enabled=False):
                yield
        except BaseException as exc:
            self.run.end(error=f"{type(exc).__name__}: {exc}")
            self.run.patch()
            raise

    def end(self, answer: str, usage: Usage | None) -> None:
        if self.run is None:
            return
        self.run.set(usage_metadata=usage_metadata(usage or {}))
        self.run.end(outputs={"choices": [{"message": {"role": "assistant", "content": answer}}]})
        self.run.patch()


def sub_call_run(
    parent: RunTree | None, model: str | BaseChatModel, prompt: str, depth: int, *, cached: bool = False
) -> ModelCallRun:
    """A sub-call's run (a cache hit included)."""
    messages = [{"role": "user", "content": traced_prompt(prompt)}]
    metadata = {"depth": depth, "prompt_chars": len(prompt)}
    return ModelCallRun(parent, RUN_NAME, model, messages, metadata, cached=cached)


def root_call_run(model: str | BaseChatModel, messages: list[BaseMessage], depth: int) -> ModelCallRun:
    """A root model call's run, under the node that makes it. Its prompt is the whole conversation
    so far, which the step's earlier runs already hold: the run keeps the system prompt and what
    is new since the last call, so a trace grows with the steps, not with their square."""
    parent = step_run(ensure_config())
    if parent is None:
        return ModelCallRun(None, ROOT_RUN_NAME, model, [], {})
    kept = [messages[0], *messages[-NEW_MESSAGES:]] if len(messages) > NEW_MESSAGES + 1 else messages
    shown = [{"role": m.type, "content": traced_prompt(m.text)} for m in kept]
    if len(kept) < len(messages):
        note = f"[{len(messages) - len(kept)} earlier messages, shown in earlier runs of this trace]"
        shown.insert(1, {"role": "system", "content": note})
    return ModelCallRun(parent, ROOT_RUN_NAME, model, shown, {"depth": depth, "messages": len(messages)})


def traced_prompt(prompt: str) -> str:
    if len(prompt) <= TRACED_PROMPT_CHARS:
        return prompt
    rest = len(prompt) - TRACED_PROMPT_CHARS
    return f"{prompt[:TRACED_PROMPT_CHARS]}\n[... {rest:,} more characters, not kept in the trace]"


def model_params(model: str | BaseChatModel) -> dict[str, Any]:
    """The ls_* metadata LangSmith shows a model by. A litellm string's provider is its prefix
    (asking litellm could import it on the event loop, seconds the first time)."""
    if isinstance(model, BaseChatModel):
        params = model._get_ls_params()
        return {key: params[key] for key in ("ls_provider", "ls_model_name") if params.get(key)}
    provider = model.split("/", 1)[0] if "/" in model else "litellm"
    return {"ls_provider": provider, "ls_model_name": model, "ls_model_type": "chat"}


def usage_metadata(usage: Usage) -> dict[str, Any]:
    tokens = {key: usage.get(key, 0) for key in ("input_tokens", "output_tokens")}
    shown: dict[str, Any] = {**tokens, "total_tokens": sum(tokens.values())}
    costs = [entry["cost"] for entry in usage.get("by_model", {}).values()]
    if costs and None not in costs:
        shown["total_cost"] = sum(costs)
    return shown
