"""The root model's prompt: the system prompt (describing, never containing, the contexts), then
the conversation; and how close it comes to the model's window."""

from __future__ import annotations

import asyncio

from langchain_core.messages import BaseMessage, SystemMessage
from langchain_core.messages.utils import count_tokens_approximately

from langgraph_rlm.graph.config import RLMSettings
from langgraph_rlm.graph.state import ContextRef
from langgraph_rlm.llm.model_table import input_window
from langgraph_rlm.prompts import render, system_template


def root_prompt(
    contexts: list[ContextRef], messages: list[BaseMessage], settings: RLMSettings
) -> list[BaseMessage]:
    return [SystemMessage(system_prompt(contexts, settings)), *messages]


def system_prompt(contexts: list[ContextRef], settings: RLMSettings) -> str:
    values = {
        "contexts": "\n".join(describe(c) for c in contexts) or "(none yet: the user may name files to load)",
        "output_limit": f"{settings.output_limit:,}",
        "max_iterations": settings.max_iterations,
    }
    if settings.system_prompt_file:
        return system_template(settings.system_prompt_file).substitute(values).strip()
    return render("system", **values)


def describe(context: ContextRef) -> str:
    origin = f"file {context['label']}" if context["source"] else "text given inline"
    preview = context["preview"][:200].replace("\n", "\\n")
    return f"- {context['name']}: str, {context['size']:,} bytes, {origin}; starts with: {preview!r}"


def best_answer_chars(
    contexts: list[ContextRef], messages: list[BaseMessage], settings: RLMSettings, coming: int
) -> int:
    """How long the root's best-answer prompt may grow once `coming` more characters of work
    (a reply, a cell's output) join the conversation: the room the question's budget holds back."""
    prompt = root_prompt(contexts, messages, settings)
    note = render("best_answer", reason="x" * 100)
    return sum(len(m.text) for m in prompt) + coming + len(note)


def prompt_tokens(messages: list[BaseMessage]) -> int:
    return count_tokens_approximately(messages)


def context_window(settings: RLMSettings) -> int | None:
    """The root model's input window in tokens: the setting, else litellm's model table."""
    if settings.context_window > 0:
        return settings.context_window
    model = settings.root_model()
    if not isinstance(model, str):
        return None
    return input_window(model)


async def compaction_budget(settings: RLMSettings) -> int | None:
    """The prompt size past which the working history is compacted (the model table is read from
    disk the first time, so off the event loop)."""
    window = await asyncio.to_thread(context_window, settings)
    return int(window * settings.compact_threshold) if window else None
