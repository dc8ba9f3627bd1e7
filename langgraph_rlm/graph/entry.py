"""The graph's entry: contexts sent as text go to the blob store before the graph runs, so its
input checkpoint, its writes, its stream and the trace's root run hold references, not the text
(a server's callers can only send text; the CLI and `rlm init` send files)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from langgraph_rlm.persistence.blobs import shared_blob_store
from langgraph_rlm.persistence.contexts import surely_text, text_ref


class CompiledRLMGraph(CompiledStateGraph):
    async def astream(self, input: Any, config: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        async for chunk in super().astream(
            await stored_texts(input, self.builder.text_store), config, **kwargs
        ):
            yield chunk


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
