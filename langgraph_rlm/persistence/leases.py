"""One run per thread: a lease row beside the thread's blobs, taken before a run's first node and
given back when it ends, however it ends.

Two writers on one thread interleave their checkpoints and REPL cells and leave a thread no
later run can load, so a run that finds the lease held waits or fails with ThreadBusy instead.
The row names its holder (pid, host, since) for that message. A holder that died cannot give
the lease back, so a lease whose process is gone from this host, or whose heartbeat is older
than STALE_AFTER, is taken over with a warning. The store keeps the time (its own clock decides
a heartbeat's age), so hosts with skewed clocks on one PostgreSQL database agree.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph_rlm.persistence.sqlite_files import connect

DATABASE = "leases.sqlite"
HEARTBEAT_SECONDS = 5.0
STALE_AFTER = 30.0
POLL_SECONDS = 0.5
HOST = socket.gethostname()

_held: ContextVar[frozenset[tuple[str, str]]] = ContextVar("rlm_thread_leases", default=frozenset())
"""The threads this task holds already, so the graph's own runs inside `rlm run`'s turn do not
wait for the lease their turn took."""


@dataclass(frozen=True)
class Holder:
    lease: str
    pid: int
    host: str
    since: float
    idle: float = 0.0
    """Seconds since its last heartbeat, by the store's clock."""

    def __str__(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"pid {self.pid} on host {self.host} since {since}"


class ThreadBusy(RuntimeError):
    """Another run holds the thread; nothing was run. Ask again once it has ended."""

    def __init__(self, thread: str, holder: Holder) -> None:
        super().__init__(f"thread {thread} is busy ({holder})")
        self.thread = thread
        self.holder = holder


class LeaseTable:
    """The lease rows; each change is one statement that succeeds for one writer only, so no
    transaction spans the read and the write. Subclasses give the connection and the dialect."""

    NOW = "(julianday('now') - 2440587.5) * 86400.0"
    MARK = "?"
    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS thread_leases (thread TEXT PRIMARY KEY, lease TEXT NOT NULL, "
        "pid INTEGER NOT NULL, host TEXT NOT NULL, since REAL NOT NULL, heartbeat REAL NOT NULL)"
    )
    TABLE = "thread_leases"

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.lock = threading.Lock()
        self._run(self.SCHEMA)

    def _run(self, statement: str, *args: object) -> Any:
        sql = statement.format(table=self.TABLE, now=self.NOW).replace("?", self.MARK)
        with self.lock:
            return self.connection.execute(sql, args)

    def insert(self, thread: str, holder: Holder) -> bool:
        inserted = self._run(
            "INSERT INTO {table} VALUES (?, ?, ?, ?, ?, {now}) ON CONFLICT (thread) DO NOTHING",
            *(thread, holder.lease, holder.pid, holder.host, holder.since),
        )
        return inserted.rowcount == 1

    def holder(self, thread: str) -> Holder | None:
        row = self._run(
            "SELECT lease, pid, host, since, {now} - heartbeat FROM {table} WHERE thread = ?", thread
        ).fetchone()
        return Holder(*row) if row else None

    def replace(self, thread: str, stale: str, holder: Holder) -> bool:
        changed = self._run(
            "UPDATE {table} SET lease = ?, pid = ?, host = ?, since = ?, heartbeat = {now} "
            "WHERE thread = ? AND lease = ?",
            *(holder.lease, holder.pid, holder.host, holder.since, thread, stale),
        )
        return changed.rowcount == 1

    def beat(self, thread: str, lease: str) -> None:
        self._run("UPDATE {table} SET heartbeat = {now} WHERE thread = ? AND lease = ?", thread, lease)

    def delete(self, thread: str, lease: str) -> None:
        self._run("DELETE FROM {table} WHERE thread = ? AND lease = ?", thread, lease)

    def close(self) -> None:
        with self.lock:
            self.connection.close()


class SqliteLeaseTable(LeaseTable):
    """A small SQLite file in the state dir; WAL and a busy timeout let every `rlm` process share it."""

    def __init__(self, path: Path) -> None:
        super().__init__(connect(path))


def open_lease_table(db: str | None, state_dir: str) -> LeaseTable:
    """Beside the thread's blobs: PostgreSQL when a database URL is set, else the state dir."""
    if db:
        from langgraph_rlm.persistence.postgres_leases import PostgresLeaseTable

        return PostgresLeaseTable(db)
    return SqliteLeaseTable(Path(state_dir) / DATABASE)


def stale(holder: Holder) -> str | None:
    """Why a holder can no longer give its lease back, if it cannot."""
    if holder.host == HOST and not alive(holder.pid):
        return "its process is gone"
    if holder.idle > STALE_AFTER:
        return f"no heartbeat for {holder.idle:.0f} s"
    return None


def alive(pid: int) -> bool:
    """A killed process its parent has not reaped yet (a zombie) is gone too."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def held_here(db: str | None, state_dir: str, thread: str) -> bool:
    return (db or state_dir, thread) in _held.get()


@asynccontextmanager
async def thread_lease(
    db: str | None, state_dir: str, thread: str, wait: float, say: Callable[[str], None]
) -> AsyncIterator[None]:
    """Holds `thread`'s lease in the store at `db` or `state_dir` for the block, waiting up to
    `wait` seconds for a busy one (ThreadBusy after that); `say` tells of the wait and of a
    takeover. A heartbeat thread keeps the lease fresh while the block runs, even while the
    event loop is busy."""
    table = await asyncio.to_thread(open_lease_table, db, state_dir)
    mine = Holder(uuid.uuid4().hex, os.getpid(), HOST, time.time())
    await take(table, thread, mine, wait, say)
    stop = threading.Event()
    beating = threading.Thread(target=heartbeat, args=(table, thread, mine.lease, stop), daemon=True)
    beating.start()
    try:
        yield
    finally:
        stop.set()
        await asyncio.to_thread(give_back, table, thread, mine.lease, beating)


@asynccontextmanager
async def turn_lease(
    db: str | None, state_dir: str, thread: str, wait: float, say: Callable[[str], None]
) -> AsyncIterator[None]:
    """The lease of a turn made of several graph runs (`rlm run`'s, with its approvals), held by
    this task: those runs take no lease of their own. Marked by a task, not a graph run, whose
    stream may be consumed from other contexts."""
    async with thread_lease(db, state_dir, thread, wait, say):
        token = _held.set(_held.get() | {(db or state_dir, thread)})
        try:
            yield
        finally:
            _held.reset(token)


async def take(table: LeaseTable, thread: str, mine: Holder, wait: float, say: Callable[[str], None]) -> None:
    """Returns holding the lease; otherwise closes the table (once an attempt cut short by a
    cancellation has ended, giving back what it took)."""
    deadline = time.monotonic() + wait
    told = False
    pending: asyncio.Future | None = None
    try:
        while True:
            pending = asyncio.ensure_future(asyncio.to_thread(try_take, table, thread, mine))
            taken, other, why = await asyncio.shield(pending)
            pending = None
            if taken:
                if other is not None:
                    say(f"thread {thread}: took over the lease of {other}: {why}")
                return
            if other is None:
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise ThreadBusy(thread, other)
            if not told:
                say(f"{ThreadBusy(thread, other)}; waiting up to {wait:g} s for it")
                told = True
            await asyncio.sleep(min(POLL_SECONDS, left))
    except BaseException:
        if pending is None:
            table.close()
        else:
            pending.add_done_callback(lambda done: undo(done, table, thread, mine.lease))
        raise


def try_take(table: LeaseTable, thread: str, mine: Holder) -> tuple[bool, Holder | None, str | None]:
    """(taken, the holder it had, why that one was stale); (False, None, None): try again at once."""
    if table.insert(thread, mine):
        return True, None, None
    other = table.holder(thread)
    if other is None:
        return False, None, None
    why = stale(other)
    if why is None:
        return False, other, None
    if table.replace(thread, other.lease, mine):
        return True, other, why
    return False, None, None


def undo(attempt: asyncio.Future, table: LeaseTable, thread: str, lease: str) -> None:
    """A lease taken by an attempt whose run was cancelled meanwhile goes straight back."""
    try:
        if not attempt.cancelled() and attempt.exception() is None and attempt.result()[0]:
            table.delete(thread, lease)
    finally:
        table.close()


def heartbeat(table: LeaseTable, thread: str, lease: str, stop: threading.Event) -> None:
    """A store out of reach for a moment is not a lost lease: only STALE_AFTER decides that."""
    while not stop.wait(HEARTBEAT_SECONDS):
        try:
            table.beat(thread, lease)
        except Exception:
            continue


def give_back(table: LeaseTable, thread: str, lease: str, beating: threading.Thread) -> None:
    beating.join()
    try:
        table.delete(thread, lease)
    finally:
        table.close()
