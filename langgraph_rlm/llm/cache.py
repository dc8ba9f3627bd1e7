"""Identical sub-calls of a thread are answered once.

A key is the SHA-256 of a canonical JSON of the thread, the model with everything that shapes its
answer (a litellm string and its endpoint, or a chat model object's class and parameters such as
temperature) and the prompt. Its scope is the root thread of the rlm_query tree: a child RLM's own
thread key is new on every run, so only the root's makes a replay of the whole tree free."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel

from langgraph_rlm.llm.usage import Usage
from langgraph_rlm.persistence.answers import AnswerStore

CHILD = "/child-"
SUBGRAPH = "|"


@dataclass(frozen=True)
class SubCallCache:
    store: AnswerStore
    thread: str
    api_base: str | None

    def key(self, model: str | BaseChatModel, prompt: str) -> str:
        identity = json.dumps(
            {"thread": self.thread, "model": model_identity(model, self.api_base), "prompt": prompt},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            default=repr,
        )
        return hashlib.sha256(identity.encode()).hexdigest()

    async def answer(self, model: str | BaseChatModel, prompt: str) -> str | None:
        found = await asyncio.to_thread(self.store.get, self.key(model, prompt))
        return found[0] if found else None

    async def keep(self, model: str | BaseChatModel, prompt: str, answer: str, usage: Usage) -> None:
        await asyncio.to_thread(self.store.put, self.key(model, prompt), self.thread, answer, usage)


def model_identity(model: str | BaseChatModel, api_base: str | None) -> dict[str, Any]:
    if isinstance(model, str):
        return {"name": model, "api_base": api_base}
    kind = type(model)
    return {"class": f"{kind.__module__}.{kind.__qualname__}", "params": model._identifying_params}


def root_thread(session: str) -> str:
    """The thread a session belongs to: a child RLM's and a subgraph's both lead back to it."""
    return session.split(CHILD, 1)[0].split(SUBGRAPH, 1)[0]
