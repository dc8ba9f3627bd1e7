"""Where threads are kept: PostgreSQL or one SQLite file, large text in the blob store beside them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from langgraph_rlm.graph.config import RLMSettings
from langgraph_rlm.persistence.blobs import shared_blob_store
from langgraph_rlm.persistence.offload import OffloadingSaver

DATABASE = "threads.sqlite"


class SqliteSaver(OffloadingSaver, AsyncSqliteSaver):
    pass


@asynccontextmanager
async def open_checkpointer(settings: RLMSettings) -> AsyncIterator[BaseCheckpointSaver]:
    """PostgreSQL when `db` is set, else one SQLite file under the state directory; large text
    in either is kept in the blob store."""
    Path(settings.state_dir).mkdir(parents=True, exist_ok=True)
    blobs = await asyncio.to_thread(shared_blob_store, settings.db, settings.state_dir)
    if settings.db:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        class PostgresSaver(OffloadingSaver, AsyncPostgresSaver):
            pass

        async with PostgresSaver.from_conn_string(settings.db) as saver:
            await saver.setup()
            saver.blobs = blobs
            yield saver
        return
    async with SqliteSaver.from_conn_string(str(Path(settings.state_dir) / DATABASE)) as saver:
        saver.blobs = blobs
        yield saver


@asynccontextmanager
async def server_checkpointer() -> AsyncIterator[BaseCheckpointSaver]:
    """For langgraph.json: a LangGraph server keeps its threads where the RLM_* settings say, so a
    context sent as text is stored once, in the blob store, not in every checkpoint and write."""
    async with open_checkpointer(RLMSettings()) as saver:
        yield saver
