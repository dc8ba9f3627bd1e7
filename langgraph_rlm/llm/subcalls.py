"""The host side of `llm_query` and `rlm_query`: concurrent, limited, retried, counted."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.language_models import BaseChatModel

from langgraph_rlm.llm.models import ask
from langgraph_rlm.llm.usage import Usage, add_usage

ChildRunner = Callable[[str, str | None, int], Awaitable[tuple[str, Usage]]]
TextLoader = Callable[[str], str]
EventSink = Callable[[dict[str, Any]], None]


class SubCallLimitReached(RuntimeError):
    pass


class SubCallRouter:
    """One per root step; the limit counts calls already made earlier in the run."""

    def __init__(
        self,
        model: str | BaseChatModel,
        *,
        api_base: str | None,
        concurrency: int,
        retries: int,
        calls_left: int,
        child: ChildRunner | None = None,
        load_text: TextLoader | None = None,
        emit: EventSink | None = None,
    ) -> None:
        self.model = model
        self.api_base = api_base
        self.semaphore = asyncio.Semaphore(max(1, concurrency))
        self.retries = retries
        self.calls_left = calls_left
        self.child = child
        self.load_text = load_text
        self.emit = emit or (lambda event: None)
        self.usage: Usage = {}
        self.started = 0

    def _claim(self) -> int:
        if self.calls_left <= 0:
            raise SubCallLimitReached("the run's sub-call limit is reached (raise --max-sub-calls)")
        self.calls_left -= 1
        self.started += 1
        return self.started

    async def llm_query(self, prompt: str, model: str | None = None) -> str:
        number = self._claim()
        target = model or self.model
        async with self.semaphore:
            self.emit({"event": "subcall", "phase": "start", "n": number, "kind": "llm"})
            try:
                text, usage = await self._with_retries(lambda: ask(target, prompt, self.api_base))
            finally:
                self.emit({"event": "subcall", "phase": "end", "n": number, "kind": "llm"})
        self.usage = add_usage(self.usage, usage)
        return text

    async def rlm_query(self, prompt: str, context_sha: str | None) -> str:
        """A child RLM when recursion is allowed here; otherwise one sub-model call."""
        if self.child is None:
            if context_sha is None or self.load_text is None:
                return await self.llm_query(prompt)
            context = await asyncio.to_thread(self.load_text, context_sha)
            return await self.llm_query(f"{prompt}\n\n{context}")
        number = self._claim()
        self.emit({"event": "subcall", "phase": "start", "n": number, "kind": "rlm"})
        try:
            answer, usage = await self.child(prompt, context_sha, self.calls_left)
        finally:
            self.emit({"event": "subcall", "phase": "end", "n": number, "kind": "rlm"})
        self.calls_left -= usage.get("sub_calls", 0)
        self.usage = add_usage(self.usage, add_usage(usage, {"sub_calls": 1}))
        return answer

    async def _with_retries(self, call: Callable[[], Awaitable[Any]]) -> Any:
        for attempt in range(self.retries):
            try:
                return await call()
            except Exception:
                await asyncio.sleep(0.5 * 2**attempt)
        return await call()
