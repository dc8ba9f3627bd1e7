"""Checkpoints that keep large text in the blob store: a graph's raw input (a context given as
text) is saved with the input checkpoint and its first writes before any node can store it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple

from langgraph_rlm.persistence.blobs import BlobStore
from langgraph_rlm.sandboxes.worker.protocol import SHA

OFFLOAD_CHARS = 1 << 16
MARK = "\0rlm-blob:"


class OffloadedText(str):
    """Text loaded back from the blob store; `sha` keeps its blob alive (see collect)."""

    sha: str


def strings(value: Any, change: Callable[[str], str]) -> Any:
    """`value` with `change` applied to the strings inside its plain dicts, lists and tuples."""
    kind = type(value)
    if kind is dict:
        return {key: strings(item, change) for key, item in value.items()}
    if kind is list or kind is tuple:
        return kind(strings(item, change) for item in value)
    return change(value) if isinstance(value, str) else value


def any_string(value: Any, test: Callable[[str], bool]) -> bool:
    kind = type(value)
    if kind is dict:
        return any(any_string(item, test) for item in value.values())
    if kind is list or kind is tuple:
        return any(any_string(item, test) for item in value)
    return isinstance(value, str) and test(value)


def offloadable(text: str) -> bool:
    """Large, or shaped like a mark: then every mark read back is one this module wrote."""
    return len(text) >= OFFLOAD_CHARS or text.startswith(MARK)


def is_mark(text: str) -> bool:
    return type(text) is str and text.startswith(MARK) and SHA.match(text[len(MARK) :]) is not None


class OffloadingSaver:
    """Mixed into an async checkpoint saver: strings of 64 Ki characters or more are stored by
    content in `blobs` and saved as a mark naming their hash. The blob store is read and
    written off the event loop; values without such strings pass through untouched."""

    blobs: BlobStore

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await super().aput(config, await self._out(checkpoint), metadata, new_versions)  # type: ignore[misc]

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        await super().aput_writes(config, await self._out(list(writes)), task_id, task_path)  # type: ignore[misc]

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        saved = await super().aget_tuple(config)  # type: ignore[misc]
        return await self._in(saved) if saved else None

    async def alist(self, config: RunnableConfig | None, **options: Any) -> AsyncIterator[CheckpointTuple]:
        async for saved in super().alist(config, **options):  # type: ignore[misc]
            yield await self._in(saved)

    async def _out(self, value: Any) -> Any:
        if not any_string(value, offloadable):
            return value
        return await asyncio.to_thread(strings, value, self._store)

    async def _in(self, saved: CheckpointTuple) -> CheckpointTuple:
        found = [saved.checkpoint["channel_values"], saved.pending_writes or []]
        if not any_string(found, is_mark):
            return saved
        values, writes = await asyncio.to_thread(strings, found, self._load)
        return saved._replace(
            checkpoint={**saved.checkpoint, "channel_values": values}, pending_writes=writes
        )

    def _store(self, text: str) -> str:
        if not offloadable(text):
            return text
        if isinstance(text, OffloadedText) and self.blobs.has(text.sha):
            return MARK + text.sha
        return MARK + self.blobs.put(text.encode("utf-8", "surrogatepass"))

    def _load(self, text: str) -> str:
        if not is_mark(text):
            return text
        loaded = OffloadedText(self.blobs.get(text[len(MARK) :]).decode("utf-8", "surrogatepass"))
        loaded.sha = text[len(MARK) :]
        return loaded


def offloaded_shas(value: Any) -> set[str]:
    """The blobs a loaded checkpoint value (or pending write) needs to load again."""
    found: set[str] = set()
    any_string(value, lambda text: isinstance(text, OffloadedText) and bool(found.add(text.sha)))
    return found
