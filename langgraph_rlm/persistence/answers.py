"""Sub-call answers kept beside a thread's checkpoints, so a resumed, replayed or forked run is
answered from here instead of paying the model again.

Rows are keyed by a hash (see llm/cache.py) and tagged with their thread, so forgetting a thread
forgets its answers. The first answer stored under a key stays: concurrent writers of the same
key (a batch, or several processes on one store) never fail, and every later reader agrees.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Protocol

from langgraph_rlm.llm.usage import Usage
from langgraph_rlm.persistence.sqlite_files import connect

DATABASE = "answers.sqlite"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS sub_call_answers "
    "(key TEXT PRIMARY KEY, thread TEXT NOT NULL, answer TEXT NOT NULL, usage TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS sub_call_answers_thread ON sub_call_answers (thread)",
)


class AnswerStore(Protocol):
    def get(self, key: str) -> tuple[str, Usage] | None: ...

    def put(self, key: str, thread: str, answer: str, usage: Usage) -> None: ...

    def forget(self, thread: str) -> None: ...


class SqliteAnswerStore:
    """One small SQLite file in the state directory; WAL and a busy timeout let several `rlm`
    processes share it."""

    def __init__(self, path: Path) -> None:
        self.connection = connect(path)
        self.lock = threading.Lock()
        with self.lock:
            for statement in SCHEMA:
                self.connection.execute(statement)

    def get(self, key: str) -> tuple[str, Usage] | None:
        with self.lock:
            row = self.connection.execute(
                "SELECT answer, usage FROM sub_call_answers WHERE key = ?", (key,)
            ).fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def put(self, key: str, thread: str, answer: str, usage: Usage) -> None:
        with self.lock:
            self.connection.execute(
                "INSERT OR IGNORE INTO sub_call_answers VALUES (?, ?, ?, ?)",
                (key, thread, answer, json.dumps(usage)),
            )

    def forget(self, thread: str) -> None:
        with self.lock:
            self.connection.execute("DELETE FROM sub_call_answers WHERE thread = ?", (thread,))


def open_answer_store(db: str | None, state_dir: Path) -> AnswerStore:
    """Beside the thread's blobs: PostgreSQL when a database URL is set, else the state dir."""
    if db:
        from langgraph_rlm.persistence.postgres_answers import PostgresAnswerStore

        return PostgresAnswerStore(db)
    return SqliteAnswerStore(Path(state_dir) / DATABASE)
