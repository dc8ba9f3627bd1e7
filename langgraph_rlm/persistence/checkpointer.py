"""Where threads are kept: PostgreSQL when `db` is set, else one SQLite file in the state dir."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from langgraph_rlm.extras import POSTGRES, require
from langgraph_rlm.graph.config import RLMSettings

DATABASE = "threads.sqlite"


@asynccontextmanager
async def open_checkpointer(settings: RLMSettings) -> AsyncIterator[BaseCheckpointSaver]:
    if settings.db:
        postgres = require("langgraph.checkpoint.postgres.aio", "postgres", POSTGRES)
        async with postgres.AsyncPostgresSaver.from_conn_string(settings.db) as saver:
            await saver.setup()
            yield saver
        return
    Path(settings.state_dir).mkdir(parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(Path(settings.state_dir) / DATABASE)) as saver:
        yield saver


async def select(saver: BaseCheckpointSaver, sql: str, *params: str) -> list[tuple]:
    """Rows of LangGraph's own tables, read without loading a checkpoint, so one that cannot be
    loaded is still seen; `sql` is written with SQLite's `?` placeholders."""
    if isinstance(saver, AsyncSqliteSaver):
        await saver.setup()
        async with saver.conn.execute(sql, params) as cursor:
            return [tuple(row) for row in await cursor.fetchall()]
    async with saver.conn.cursor() as cursor:  # type: ignore[attr-defined]
        await cursor.execute(sql.replace("?", "%s"), params)
        return [tuple(row.values()) for row in await cursor.fetchall()]


def store_errors() -> tuple[type[Exception], ...]:
    """Failures of the store itself (a lost connection, a full disk, a locked file): the thread
    in it may be fine, so these are never taken for a thread that cannot be loaded."""
    errors: tuple[type[Exception], ...] = (OSError, sqlite3.Error)
    try:
        from psycopg import Error
    except ImportError:
        return errors
    return (*errors, Error)
