"""In-process scripted chat models: the only part of a test that is not real."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from tests.openai_server import GRAPH_NOTES


class ScriptedChatModel(BaseChatModel):
    """Answers with `respond(messages)`; records every prompt it was sent and the output limit
    asked for, which it keeps to as a provider would (four characters a token)."""

    respond: Callable[[list[BaseMessage]], str]
    calls: list[list[BaseMessage]] = Field(default_factory=list)
    limits: list[int | None] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        self.calls.append(messages)
        self.limits.append(kw.get("max_tokens"))
        text = self.respond(messages)
        if kw.get("max_tokens") is not None:
            text = text[: kw["max_tokens"] * 4]
        tokens = sum(len(str(m.content)) for m in messages) // 4
        usage = {
            "input_tokens": tokens,
            "output_tokens": len(text) // 4,
            "total_tokens": tokens + len(text) // 4,
        }
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text, usage_metadata=usage))])


LIMIT_NOTE = "The run has reached its limit"
FEEDBACK = (*GRAPH_NOTES, LIMIT_NOTE)


def is_question(message: BaseMessage) -> bool:
    return message.type == "human" and not str(message.content).startswith(FEEDBACK)


def question_of(messages: list[BaseMessage]) -> str:
    """The current question, past the notes the graph adds to the conversation."""
    return str([m for m in messages if is_question(m)][-1].content)


def steps(*replies: str) -> Callable[[list[BaseMessage]], str]:
    """A root model that gives `replies` in order, one per step of the current question."""

    def respond(messages: list[BaseMessage]) -> str:
        if messages[0].type != "system":
            return "summary"
        question = max(i for i, m in enumerate(messages) if is_question(m))
        done = sum(1 for m in messages[question:] if m.type == "ai")
        return replies[min(done, len(replies) - 1)]

    return respond


def until_limit(step: str, best_answer: str) -> Callable[[list[BaseMessage]], str]:
    """A root model that repeats `step` until the run hits a limit, then gives `best_answer`."""

    def respond(messages: list[BaseMessage]) -> str:
        return best_answer if str(messages[-1].content).startswith(LIMIT_NOTE) else step

    return respond
