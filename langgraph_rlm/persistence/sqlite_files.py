"""The small SQLite files the state dir holds beside LangGraph's (answers, leases), opened the
one way that lets every `rlm` process share them: WAL, and a busy timeout."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

BUSY_SECONDS = 30.0


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit, usable from any thread (callers hold their own lock). Switching
    a new file to WAL needs it to itself, and SQLite answers "database is locked" at once, without
    its busy timeout, to a process that meets another one doing the same (two first runs at once,
    or `rlm doctor` starting every sandbox together): that switch is retried for as long as the
    timeout would wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=BUSY_SECONDS, check_same_thread=False, isolation_level=None)
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return connection
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                connection.close()
                raise
            time.sleep(0.05)
