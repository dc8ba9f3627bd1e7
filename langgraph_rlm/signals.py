"""Ctrl-C and SIGTERM as the `rlm` command takes them: a cancellation, so sandboxes are stopped.

Python's default SIGTERM ends the process on the spot, leaving Docker containers and cgroups
behind; a cancelled run instead unwinds through the `finally` blocks that stop its sandboxes,
and the checkpoint of the last finished step stays as it was.
"""

from __future__ import annotations

import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
STOPPING = (signal.SIGINT, signal.SIGTERM)


class Stopped(Exception):
    """A signal ended the command after its cleanup; the exit code says which (128 + its number)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`, where the first SIGINT or SIGTERM cancels the coroutine and raises Stopped
    once it has unwound. Signals that come after the first are ignored until the process exits:
    cutting the cleanup short is what would leave sandboxes running, and a stopped command exits.
    asyncio loads here, when a command runs: `rlm --help` needs none of it."""
    import asyncio

    return asyncio.run(_stoppable(coroutine))


async def _stoppable(coroutine: Coroutine[Any, Any, T]) -> T:
    import asyncio

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    received: list[int] = []

    def on_signal(signum: int) -> None:
        if not received:
            received.append(signum)
            task.cancel()

    for signum in STOPPING:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        return await coroutine
    except asyncio.CancelledError:
        if received:
            raise Stopped(received[0]) from None
        raise
    finally:
        for signum in STOPPING:
            loop.remove_signal_handler(signum)
            if received:
                signal.signal(signum, signal.SIG_IGN)
