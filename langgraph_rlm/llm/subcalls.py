"""The host side of `llm_query` and `rlm_query`: concurrent, limited, retried, counted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from langchain_core.language_models import BaseChatModel

from langgraph_rlm.llm.budget import SubCallBudget, SubCallLimitReached
from langgraph_rlm.llm.cache import SubCallCache
from langgraph_rlm.llm.models import ask, model_name
from langgraph_rlm.llm.retry import named, with_retries
from langgraph_rlm.llm.tracing import sub_call_run
from langgraph_rlm.llm.usage import Usage, add_usage, cache_hit, hits_of, price_warnings
from langgraph_rlm.trajectory.records import CallLog, CallRecord, StepRecord

if TYPE_CHECKING:
    from langsmith.run_trees import RunTree


class ChildRun(NamedTuple):
    """What a child RLM gives back: its answer, the usage of its subtree, and its steps."""

    answer: str
    usage: Usage
    model: str
    steps: list[StepRecord]
    stop_reason: str | None


ChildRunner = Callable[[str, str | None, SubCallBudget], Awaitable[ChildRun]]
TextLoader = Callable[[str], str]
EventSink = Callable[[dict[str, Any]], None]
SHOWN_NAME = 60

__all__ = ["ModelNotAllowed", "SubCallLimitReached", "SubCallRouter"]


class ModelNotAllowed(ValueError):
    """The sandbox named a model the operator did not allow; no request is made."""


class SubCallRouter:
    """One per step of one RLM. `budget` is this step's branch of the question's budget, shared
    with every child RLM below it; every request sent to a model (a retry too) is claimed first.
    `trace`: the step's run in a LangSmith trace, which each sub-call's run goes under."""

    def __init__(
        self,
        model: str | BaseChatModel,
        *,
        api_base: str | None,
        concurrency: int,
        retries: int,
        budget: SubCallBudget,
        depth: int = 0,
        allowed_models: Iterable[str] = (),
        child_concurrency: int = 1,
        child: ChildRunner | None = None,
        load_text: TextLoader | None = None,
        emit: EventSink | None = None,
        cache: SubCallCache | None = None,
        trace: RunTree | None = None,
    ) -> None:
        self.model = model
        self.api_base = api_base
        self.semaphore = asyncio.Semaphore(max(1, concurrency))
        self.children = asyncio.Semaphore(max(1, child_concurrency))
        self.retries = retries
        self.budget = budget
        self.depth = depth
        self.allowed = frozenset(allowed_models) | ({model} if isinstance(model, str) else set())
        self.child = child
        self.load_text = load_text
        self.emit = emit or (lambda event: None)
        self.cache = cache
        self.trace = trace
        self.spent: Usage = {}
        self.started = 0
        self.log = CallLog()

    @property
    def usage(self) -> Usage:
        """Every call this step's subtree made, at every depth (a child that failed included),
        plus what its children stored and answered from the cache."""
        return add_usage(self.budget.ledger, self.spent)

    def _target(self, model: object) -> str | BaseChatModel:
        """Only a name the operator allowed, exactly as written: a model string from the sandbox
        could otherwise name a URL or another provider, whose key litellm would send along."""
        if model is None:
            return self.model
        if isinstance(model, str) and model in self.allowed:
            return model
        shown = repr(model) if len(repr(model)) <= SHOWN_NAME else repr(model)[:SHOWN_NAME] + "..."
        names = ", ".join(sorted(self.allowed)) or "none"
        raise ModelNotAllowed(f"model {shown} is not allowed here (allowed: {names})")

    async def llm_query(self, prompt: str, model: object = None) -> str:
        target = self._target(model)
        record: CallRecord = {"kind": "llm", "model": shown_model(target), "depth": self.depth + 1}
        record["prompt"] = prompt
        started = time.monotonic()
        if self.cache is not None and (answer := await self.cache.answer(target, prompt)) is not None:
            self._answered_from_cache(target)
            self.log.keep({**record, "cached": True, "answer": answer}, started)
            sub_call_run(self.trace, target, prompt, self.depth, cached=True).end(answer, None)
            return answer
        reservation = await self.budget.reserve(model_name(target), len(prompt), self.depth)
        try:
            self.budget.claim()
        except SubCallLimitReached:
            self.budget.settle(reservation, None)
            raise
        self.started += 1
        number = self.started
        usage: Usage | None = None
        async with self.semaphore:
            self.emit({"event": "subcall", "phase": "start", "n": number, "kind": "llm"})
            started = time.monotonic()
            traced = sub_call_run(self.trace, target, prompt, self.depth)
            try:
                with traced.calling():
                    text, usage = await with_retries(
                        lambda: ask(target, prompt, self.api_base, self.depth, reservation.output),
                        retries=self.retries,
                        model=named(target, self.api_base),
                        may_retry=self.budget.try_claim,
                    )
                record["answer"] = text
            except Exception as exc:
                record["error"] = f"{type(exc).__name__}: {exc}"
                raise
            finally:
                self.budget.settle(reservation, usage)
                self.log.keep(record, started, usage)
                self.emit({"event": "subcall", "phase": "end", "n": number, "kind": "llm"})
        traced.end(text, usage)
        for warning in price_warnings(usage):
            self.emit(warning)
        if self.cache is not None:
            await self.cache.keep(target, prompt, text, usage)
        return text

    def _answered_from_cache(self, target: str | BaseChatModel) -> None:
        """A hit makes no request and claims no budget; it shows in usage and in the stream."""
        self.started += 1
        event = {"event": "subcall", "n": self.started, "kind": "llm", "cached": True}
        self.emit({**event, "phase": "start"})
        self.emit({**event, "phase": "end"})
        self.spent = add_usage(self.spent, cache_hit(model_name(target), self.depth))

    async def rlm_query(self, prompt: str, context_sha: str | None) -> str:
        """A child RLM when recursion is allowed here; otherwise one sub-model call. A child claims
        one call for itself before it starts, and at most `child_concurrency` are alive at once."""
        if self.child is None:
            if context_sha is None or self.load_text is None:
                return await self.llm_query(prompt)
            context = await asyncio.to_thread(self.load_text, context_sha)
            return await self.llm_query(f"{prompt}\n\n{context}")
        self.budget.claim()
        self.started += 1
        number = self.started
        record: CallRecord = {"kind": "rlm", "depth": self.depth + 1, "prompt": prompt}
        async with self.children:
            self.emit({"event": "subcall", "phase": "start", "n": number, "kind": "rlm"})
            started = time.monotonic()
            try:
                run = await self.child(prompt, context_sha, self.budget.branch())
            except Exception as exc:
                self.log.keep({**record, "error": f"{type(exc).__name__}: {exc}"}, started)
                raise
            finally:
                self.emit({"event": "subcall", "phase": "end", "n": number, "kind": "rlm"})
        child: CallRecord = {"model": run.model, "answer": run.answer, "stop_reason": run.stop_reason}
        self.log.keep({**record, **child, "steps": run.steps}, started, run.usage)
        stored: Usage = {"stored_bytes": run.usage["stored_bytes"]} if "stored_bytes" in run.usage else {}
        self.spent = add_usage(self.spent, add_usage(stored, hits_of(run.usage)))
        return run.answer


def shown_model(model: str | BaseChatModel) -> str:
    return model_name(model) or type(model).__name__
