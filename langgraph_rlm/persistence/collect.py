"""Blob garbage collection: a blob lives while any checkpoint of any thread refers to it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from langgraph_rlm.persistence.blobs import BlobNotFound, BlobStore
from langgraph_rlm.persistence.checkpointer import select, store_errors

GRACE_SECONDS = 3600.0
THREADS = "SELECT DISTINCT thread_id FROM checkpoints"


def snapshot_blobs(snapshot: str, blobs: BlobStore) -> set[str]:
    """The snapshot's manifest and everything it refers to."""
    try:
        manifest = json.loads(blobs.get(snapshot))
    except BlobNotFound:
        return {snapshot}
    return {snapshot, manifest["meta"], *manifest["values"].values(), *manifest["blobs"]}


def referenced(values: dict[str, Any], blobs: BlobStore) -> set[str]:
    refs = {c["sha"] for c in values.get("contexts", []) if isinstance(c, dict)}
    snapshot = (values.get("repl") or {}).get("snapshot")
    return refs | (snapshot_blobs(snapshot, blobs) if snapshot else set())


async def live_blobs(checkpointer: BaseCheckpointSaver, blobs: BlobStore) -> tuple[set[str], set[str]]:
    """The blobs the checkpoints refer to, and the threads with a checkpoint that cannot be read.
    Each thread is read on its own, so a broken one does not stop the others' reading; what an
    unreadable checkpoint refers to is unknown, so while there is one no blob may be collected."""
    live: set[str] = set()
    unreadable: set[str] = set()
    for (thread,) in await select(checkpointer, THREADS):
        try:
            async for saved in checkpointer.alist({"configurable": {"thread_id": thread}}):
                live |= referenced(saved.checkpoint.get("channel_values", {}), blobs)
        except store_errors():
            raise
        except Exception:
            unreadable.add(thread)
    return live, unreadable


def sweep(blobs: BlobStore, live: Iterable[str], grace_seconds: float = GRACE_SECONDS) -> tuple[int, int]:
    """Deletes unreferenced blobs older than the grace period (a run may be writing new ones)."""
    keep = set(live)
    cutoff = time.time() - grace_seconds
    removed = freed = 0
    for sha, written in list(blobs.stored()):
        if sha not in keep and written < cutoff:
            freed += blobs.delete(sha)
            removed += 1
    return removed, freed
