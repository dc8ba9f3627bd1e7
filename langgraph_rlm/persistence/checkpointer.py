"""Where threads are kept: PostgreSQL when `db` is set, else one SQLite file in the state dir."""

from __future__ import annotations

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
