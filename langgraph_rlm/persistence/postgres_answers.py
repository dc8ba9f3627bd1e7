"""Sub-call answers in PostgreSQL, shared by every worker of a LangGraph server on one database."""

from __future__ import annotations

import json
import threading

from langgraph_rlm.extras import POSTGRES, require
from langgraph_rlm.llm.usage import Usage

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rlm_sub_call_answers "
    "(key text PRIMARY KEY, thread text NOT NULL, answer text NOT NULL, usage jsonb NOT NULL)",
    "CREATE INDEX IF NOT EXISTS rlm_sub_call_answers_thread ON rlm_sub_call_answers (thread)",
)


class PostgresAnswerStore:
    def __init__(self, url: str) -> None:
        psycopg = require("psycopg", "postgres", POSTGRES)
        self.connection = psycopg.connect(url, autocommit=True)
        self.lock = threading.Lock()
        with self.lock:
            for statement in SCHEMA:
                self.connection.execute(statement)

    def get(self, key: str) -> tuple[str, Usage] | None:
        with self.lock:
            row = self.connection.execute(
                "SELECT answer, usage FROM rlm_sub_call_answers WHERE key = %s", (key,)
            ).fetchone()
        return (row[0], row[1]) if row else None

    def put(self, key: str, thread: str, answer: str, usage: Usage) -> None:
        with self.lock:
            self.connection.execute(
                "INSERT INTO rlm_sub_call_answers VALUES (%s, %s, %s, %s) ON CONFLICT (key) DO NOTHING",
                (key, thread, answer, json.dumps(usage)),
            )

    def forget(self, thread: str) -> None:
        with self.lock:
            self.connection.execute("DELETE FROM rlm_sub_call_answers WHERE thread = %s", (thread,))
