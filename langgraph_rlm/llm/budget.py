"""The limits of one question (sub-calls, tokens, dollars), shared by its whole recursion tree.

A child RLM runs inside its parent's execute step, in the same process, so it draws from the very
pool its parent draws from: no shape of tree (batched children of batched children) spends more
than the limits. Tokens are only known after a call, so each call reserves first (a generous
estimate of its prompt plus an output allowance it is held to) and settles after, returning what
it did not use. The operator's `max_reply_tokens` replaces that allowance, and holds every call
of the tree to it even when no token or cost limit is set. A call that does not fit while others
are in flight waits for them to settle: only when nothing is in flight and it still does not fit is
the limit reached. Each step of each RLM takes a branch of the budget whose ledger sums what its
own subtree spent, so a parent counts a child's calls even when the child fails. The budget
reaches a child through a context variable, which every task the child's graph starts inherits.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from langgraph_rlm.llm.usage import Usage, add_usage, give_prices, unit_prices

if TYPE_CHECKING:
    from langgraph_rlm.graph.config import RLMSettings

CHARS_PER_TOKEN = 3
TOKENS_PER_PROMPT = 16
OUTPUT_ALLOWANCE = 8_192
MIN_OUTPUT = 64
BEST_ANSWER_OUTPUT = 1_024


class LimitReached(RuntimeError):
    """A limit of the question is reached; `reason` is the stop reason the run reports."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class SubCallLimitReached(LimitReached):
    pass


@dataclass(frozen=True)
class Reservation:
    """What one call set aside; `output` is the most it may answer with (None: no limit at all)."""

    tokens: int = 0
    cost: float = 0.0
    output: int | None = None


class _Pool:
    def __init__(self, calls: int, tokens: int, cost: float, reply_tokens: int) -> None:
        self.calls_left = max(0, calls)
        self.token_limit, self.cost_limit = tokens, cost
        self.reply_tokens = reply_tokens if reply_tokens > 0 else None
        self.tokens_left: int | None = None
        self.cost_left: float | None = None
        self.reached: str | None = None
        self.in_flight = 0
        self.settled = asyncio.Event()
        self.lock = threading.Lock()

    @property
    def metered(self) -> bool:
        """Whether calls reserve tokens or dollars (a token or cost limit is set)."""
        return self.tokens_left is not None or self.cost_left is not None


class SubCallBudget:
    """Claims and reservations are atomic over the whole tree, so concurrent children can never
    overdraw it together."""

    def __init__(
        self,
        calls: int = 0,
        *,
        max_tokens: int = 0,
        tokens_left: int = 0,
        max_cost: float = 0.0,
        cost_left: float = 0.0,
        max_reply_tokens: int = 0,
        _pool: _Pool | None = None,
        _parent: SubCallBudget | None = None,
    ) -> None:
        if _pool is None:
            _pool = _Pool(calls, max_tokens, max_cost, max_reply_tokens)
            _pool.tokens_left = max(0, tokens_left) if max_tokens > 0 else None
            _pool.cost_left = max(0.0, cost_left) if max_cost > 0 else None
        self._pool = _pool
        self._parent = _parent
        self.ledger: Usage = {}

    @property
    def left(self) -> int:
        return self._pool.calls_left

    @property
    def reached(self) -> str | None:
        """The first token or cost limit hit anywhere in the tree, and where."""
        return self._pool.reached

    def branch(self) -> SubCallBudget:
        """The same pool; what the branch spends also counts here."""
        return SubCallBudget(_pool=self._pool, _parent=self)

    def claim(self) -> None:
        with self._pool.lock:
            if self._pool.calls_left <= 0:
                raise SubCallLimitReached(
                    "the run's sub-call limit is reached (raise --max-sub-calls)", "max_sub_calls"
                )
            self._pool.calls_left -= 1
            self._record({"sub_calls": 1})

    def try_claim(self) -> bool:
        try:
            self.claim()
        except SubCallLimitReached:
            return False
        return True

    async def reserve(self, model: str | None, prompt_chars: int, depth: int) -> Reservation:
        """Sets aside the most a call of `model` with this prompt may spend; LimitReached when even
        a short answer would not fit and no call in flight could give anything back."""
        pool = self._pool
        if not pool.metered:
            return Reservation(output=pool.reply_tokens)
        prices = unit_prices(model) if pool.cost_left is not None else None
        estimate = prompt_chars // CHARS_PER_TOKEN + TOKENS_PER_PROMPT
        while True:
            with pool.lock:
                if pool.reached is None:
                    reservation, hit = self._fit(estimate, prices)
                    if reservation is not None:
                        return reservation
                    if pool.in_flight == 0:
                        pool.reached = self._reason(hit, depth)
                if pool.reached is not None:
                    raise LimitReached(f"the question's limit is reached: {pool.reached}", pool.reached)
                pool.settled.clear()
            await pool.settled.wait()

    def _fit(self, estimate: int, prices: tuple[float, float] | None) -> tuple[Reservation | None, str]:
        """The reservation when a short answer fits, else which limit is in the way (pool locked)."""
        pool = self._pool
        output, hit = pool.reply_tokens or OUTPUT_ALLOWANCE, "max_tokens"
        if pool.tokens_left is not None:
            output = min(output, pool.tokens_left - estimate)
        if pool.cost_left is not None and prices is not None and prices[1] > 0:
            affordable = int((pool.cost_left - estimate * prices[0]) / prices[1])
            if affordable < output:
                output, hit = affordable, "max_cost"
        if output < min(MIN_OUTPUT, pool.reply_tokens or MIN_OUTPUT):
            return None, hit
        cost = estimate * prices[0] + output * prices[1] if prices else 0.0
        if pool.tokens_left is not None:
            pool.tokens_left -= estimate + output
        if pool.cost_left is not None:
            pool.cost_left -= cost
        pool.in_flight += 1
        return Reservation(estimate + output, cost, output), hit

    def settle(self, reservation: Reservation, usage: Usage | None) -> None:
        """Returns what the call did not use (all of it when it failed) and books what it spent."""
        spent = {key: value for key, value in (usage or {}).items() if key != "sub_calls"}
        tokens = spent.get("input_tokens", 0) + spent.get("output_tokens", 0)
        pool = self._pool
        with pool.lock:
            if pool.metered:
                if pool.tokens_left is not None:
                    pool.tokens_left += reservation.tokens - tokens
                if pool.cost_left is not None:
                    pool.cost_left += reservation.cost - spent.get("cost", 0.0)
                pool.in_flight -= 1
            self._record(spent)  # type: ignore[arg-type]
        pool.settled.set()

    def _record(self, usage: Usage) -> None:
        node: SubCallBudget | None = self
        while node is not None:
            node.ledger = add_usage(node.ledger, usage)
            node = node._parent

    def _reason(self, kind: str, depth: int) -> str:
        if kind == "max_cost":
            return f"max_cost (${self._pool.cost_limit:g}, reached at depth {depth})"
        return f"max_tokens ({self._pool.token_limit} tokens, reached at depth {depth})"


def question_budget(
    settings: RLMSettings, spent: Usage, best_answer_chars: int | None = None
) -> SubCallBudget:
    """A child RLM draws from its parent's budget; the root's is what its question has left, less
    room for the root's best answer (a prompt of `best_answer_chars`) when the tree stops at a limit.
    That room is at most half of what is left, so a small limit still lets a step be made (and
    should the best answer then not fit, the last reply is the answer). The prices the user gave
    count from here on, for every call of the tree."""
    give_prices(settings.model_prices)
    inherited = inherited_budget()
    if inherited is not None:
        return inherited.branch()
    tokens_left = settings.max_tokens - spent.get("input_tokens", 0) - spent.get("output_tokens", 0)
    cost_left = settings.max_cost - spent.get("cost", 0.0)
    held, held_cost = 0, 0.0
    if best_answer_chars is not None:
        held = best_answer_chars // CHARS_PER_TOKEN + TOKENS_PER_PROMPT + BEST_ANSWER_OUTPUT
        model = settings.root_model()
        prices = unit_prices(model if isinstance(model, str) else None) if settings.max_cost > 0 else None
        if prices is not None:
            held_cost = (held - BEST_ANSWER_OUTPUT) * prices[0] + BEST_ANSWER_OUTPUT * prices[1]
    return SubCallBudget(
        settings.max_sub_calls - spent.get("sub_calls", 0),
        max_tokens=settings.max_tokens,
        tokens_left=tokens_left - min(held, max(0, tokens_left) // 2),
        max_cost=settings.max_cost,
        cost_left=cost_left - min(held_cost, max(0.0, cost_left) / 2),
        max_reply_tokens=settings.max_reply_tokens,
    )


_inherited: ContextVar[SubCallBudget | None] = ContextVar("rlm_sub_call_budget", default=None)


def inherited_budget() -> SubCallBudget | None:
    """Inside a child RLM, the branch its parent gave it; None at the root of the tree."""
    return _inherited.get()


@contextmanager
def shared_with_child(budget: SubCallBudget) -> Iterator[None]:
    token = _inherited.set(budget)
    try:
        yield
    finally:
        _inherited.reset(token)
