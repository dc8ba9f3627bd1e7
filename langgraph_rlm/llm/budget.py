"""The sub-call limit of one question, shared by its whole recursion tree.

A child RLM runs inside its parent's execute step, in the same process, so it draws from the very
budget its parent draws from: no shape of tree (batched children of batched children) makes more
sub-model requests than the limit. The budget reaches the child through a context variable, which
every task the child's graph starts inherits.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class SubCallLimitReached(RuntimeError):
    pass


class SubCallBudget:
    """Claims are atomic, so concurrent children can never overdraw it together."""

    def __init__(self, calls: int) -> None:
        self._left = max(0, calls)
        self._lock = threading.Lock()

    @property
    def left(self) -> int:
        return self._left

    def claim(self) -> None:
        with self._lock:
            if self._left <= 0:
                raise SubCallLimitReached("the run's sub-call limit is reached (raise --max-sub-calls)")
            self._left -= 1

    def try_claim(self) -> bool:
        try:
            self.claim()
        except SubCallLimitReached:
            return False
        return True


_inherited: ContextVar[SubCallBudget | None] = ContextVar("rlm_sub_call_budget", default=None)


def inherited_budget() -> SubCallBudget | None:
    """The parent's budget inside a child RLM; None at the root of the tree."""
    return _inherited.get()


@contextmanager
def shared_with_child(budget: SubCallBudget) -> Iterator[None]:
    token = _inherited.set(budget)
    try:
        yield
    finally:
        _inherited.reset(token)
