"""Checkpoints and snapshots grow with what each step adds, not with the square of the steps or
the size of the contexts."""

from __future__ import annotations

import json

from langgraph.checkpoint.memory import InMemorySaver

from benchmarks.checkpoint_growth import measure
from benchmarks.inline_context import measure as inline_context
from langgraph_rlm import RLMSettings, build_rlm_graph, close_sandboxes
from langgraph_rlm.persistence.blobs import shared_blob_store
from tests.conftest import need_bwrap
from tests.scripted_models import ScriptedChatModel, steps


async def test_thirty_steps_of_three_kilobytes_store_under_a_megabyte_and_grow_flat():
    need_bwrap()
    (n1, s1), (n2, s2), (n3, s3) = await measure(30, 3)
    assert s3 < 1_000_000, f"{s3:,} bytes for {n3} steps"
    first, second = (s2 - s1) / (n2 - n1), (s3 - s2) / (n3 - n2)
    assert second < 1.25 * first, f"growth per step went from {first:,.0f} to {second:,.0f} bytes"


async def test_a_ten_megabyte_context_sent_as_text_stays_out_of_checkpoints():
    need_bwrap()
    checkpoints, blobs = await inline_context(10, at_entry=True)
    assert checkpoints < 1_000_000, f"{checkpoints:,} bytes in checkpoints and writes"
    assert 10_000_000 <= blobs < 11_000_000, f"{blobs:,} bytes in the blob store"


async def test_a_snapshot_refers_to_a_context_below_the_big_value_size_instead_of_copying_it(tmp_path):
    """Each step's snapshot pickles every variable; a context is already stored, so pickling it
    again each step cost time in proportion to its size (6 ms a step at 1 MB)."""
    need_bwrap()
    root = ScriptedChatModel(respond=steps("```repl\nx = len(context)\n```", "```repl\nFINAL(x)\n```"))
    settings = RLMSettings(model=root, sub_model=root, state_dir=str(tmp_path), compact_turns=False)
    graph = build_rlm_graph(settings=settings).compile(checkpointer=InMemorySaver())
    text = "a log line of the context\n" * 20_000
    config = {"configurable": {"thread_id": "t"}}
    answer = (await graph.ainvoke({"query": "how long?", "contexts": [text]}, config))["answer"]
    await close_sandboxes()
    assert answer == str(len(text))
    blobs = shared_blob_store(None, str(tmp_path))
    manifest = json.loads(blobs.get((await graph.aget_state(config)).values["repl"]["snapshot"]))
    sizes = {name: blobs.size(sha) for name, sha in manifest["values"].items()}
    assert sizes["context"] < 1_000 and sizes["context_0"] < 1_000, sizes
