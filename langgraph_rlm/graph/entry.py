"""The graph's entry: contexts sent as text go to the blob store before the graph runs, so its
input checkpoint, its writes, its stream and the trace's root run hold references, not the text
(a server's callers can only send text; the CLI and `rlm init` send files).

A graph compiled with a checkpointer runs a thread one run at a time, across processes and
machines: each run holds the thread's lease (persistence.leases) in the builder's store, or
raises ThreadBusy before its first node. The graph a LangGraph server serves takes none (see
builder): the server serialises a thread's runs itself, and a lease left by a crashed server
would only hold up the runs after its restart (the same pid on the same host looks alive)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

from langchain_core.runnables.config import merge_configs
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph

from langgraph_rlm.persistence.blobs import shared_blob_store
from langgraph_rlm.persistence.contexts import surely_text, text_ref
from langgraph_rlm.persistence.leases import held_here, thread_lease

log = logging.getLogger(__name__)


class CompiledRLMGraph(CompiledStateGraph):
    async def astream(self, input: Any, config: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        async with self.lease(config):
            async for chunk in super().astream(
                await stored_texts(input, self.builder.text_store), config, **kwargs
            ):
                yield chunk

    def lease(self, config: Any) -> AbstractAsyncContextManager[Any]:
        """Taken at once or not at all: a caller that wants to wait catches ThreadBusy."""
        thread = (merge_configs(self.config, config).get("configurable") or {}).get("thread_id")
        db, state_dir = self.builder.text_store
        if (
            thread is None
            or not self.builder.thread_leases
            or not isinstance(self.checkpointer, BaseCheckpointSaver)
            or held_here(db, state_dir, str(thread))
        ):
            return nullcontext()
        return thread_lease(db, state_dir, str(thread), wait=0.0, say=log.warning)


async def stored_texts(given: Any, store_at: tuple[str | None, str]) -> Any:
    """The input with each context given as text replaced by its (unnamed) reference; start_turn
    names it, and takes paths and short texts as before."""
    contexts = given.get("contexts") if isinstance(given, dict) else None
    if not isinstance(contexts, list) or not any(isinstance(c, str) and surely_text(c) for c in contexts):
        return given
    return {**given, "contexts": await asyncio.to_thread(store, contexts, store_at)}


def store(contexts: list[Any], store_at: tuple[str | None, str]) -> list[Any]:
    blobs = shared_blob_store(*store_at)
    return [text_ref(c, "", blobs) if isinstance(c, str) and surely_text(c) else c for c in contexts]
