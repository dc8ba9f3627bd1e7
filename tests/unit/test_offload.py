"""Large text in checkpoints lives in the blob store, once, and comes back whole."""

from __future__ import annotations

import hashlib

from langgraph.checkpoint.base import empty_checkpoint

from langgraph_rlm import RLMSettings
from langgraph_rlm.persistence.blobs import shared_blob_store
from langgraph_rlm.persistence.checkpointer import DATABASE, open_checkpointer
from langgraph_rlm.persistence.collect import live_blobs
from langgraph_rlm.persistence.offload import MARK


async def test_large_text_is_stored_once_read_back_whole_and_kept_alive(tmp_path):
    big, small = "big text\n" * 20_000, "small text"
    other = "another thread's secret\n" * 10_000
    settings = RLMSettings(state_dir=str(tmp_path))
    blobs = shared_blob_store(None, str(tmp_path))
    other_sha = blobs.put(other.encode())
    forged = MARK + other_sha
    async with open_checkpointer(settings) as saver:
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"__start__": {"query": small, "contexts": [big, forged]}}
        config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
        saved = await saver.aput(config, checkpoint, {"source": "input", "step": -1}, {})
        await saver.aput_writes(saved, [("contexts", [big, forged])], "task-1")

        loaded = await saver.aget_tuple(saved)
        assert loaded.checkpoint["channel_values"]["__start__"] == {"query": small, "contexts": [big, forged]}
        assert [value for _, _, value in loaded.pending_writes] == [[big, forged]]
        live = await live_blobs(saver, blobs)
    assert hashlib.sha256(big.encode()).hexdigest() in live
    assert (tmp_path / DATABASE).stat().st_size < 100_000
    assert blobs.get(hashlib.sha256(big.encode()).hexdigest()) == big.encode()
