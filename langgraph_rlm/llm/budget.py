"""The sub-call limit of one question, shared by its whole recursion tree.

A child RLM runs inside its parent's execute step, in the same process, so it draws from the very
pool its parent draws from: no shape of tree (batched children of batched children) makes more
sub-model requests than the limit. Each step of each RLM takes a branch of the budget that counts
what its own subtree claimed, so a parent counts a child's calls even when the child fails. The
budget reaches a child through a context variable, which every task the child's graph starts inherits.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class SubCallLimitReached(RuntimeError):
    pass


class _Pool:
    def __init__(self, calls: int) -> None:
        self.left = max(0, calls)
        self.lock = threading.Lock()


class SubCallBudget:
    """Claims are atomic over the whole tree, so concurrent children can never overdraw it together."""

    def __init__(self, calls: int = 0, *, _pool: _Pool | None = None, _parent: SubCallBudget | None = None):
        self._pool = _pool or _Pool(calls)
        self._parent = _parent
        self.claimed = 0

    @property
    def left(self) -> int:
        return self._pool.left

    def branch(self) -> SubCallBudget:
        """The same pool; what the branch claims also counts here."""
        return SubCallBudget(_pool=self._pool, _parent=self)

    def claim(self) -> None:
        with self._pool.lock:
            if self._pool.left <= 0:
                raise SubCallLimitReached("the run's sub-call limit is reached (raise --max-sub-calls)")
            self._pool.left -= 1
            node: SubCallBudget | None = self
            while node is not None:
                node.claimed += 1
                node = node._parent

    def try_claim(self) -> bool:
        try:
            self.claim()
        except SubCallLimitReached:
            return False
        return True


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
