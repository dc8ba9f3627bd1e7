"""What a context sent as text costs in storage: bytes in the checkpoint tables and the blob
store after a two-step question about a 10 MB text, with the graph compiled by LangGraph's own
`StateGraph.compile` (the baseline: the text reaches checkpoints before any node runs) and by the
RLM's, whose entry stores the text in the blob store first. Both on LangGraph's SQLite saver.

    python -m benchmarks.inline_context [--mb 10]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import tempfile
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import StateGraph

from benchmarks.checkpoint_growth import stored_bytes
from langgraph_rlm import RLMSettings, build_rlm_graph, close_sandboxes
from langgraph_rlm.persistence.checkpointer import DATABASE
from tests.scripted_models import ScriptedChatModel, steps


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


async def measure(megabytes: int, at_entry: bool) -> tuple[int, int]:
    """(bytes in checkpoints and writes, bytes in the blob store) for one question."""
    text = "a line of the context\n" * (megabytes * 1_000_000 // 22)
    replies = steps("```repl\nprint(len(context_0))\n```", "```repl\nFINAL('done')\n```")
    root = ScriptedChatModel(respond=replies)
    with tempfile.TemporaryDirectory() as tmp:
        settings = RLMSettings(state_dir=tmp, compact_turns=False)
        async with AsyncSqliteSaver.from_conn_string(f"{tmp}/{DATABASE}") as saver:
            builder = build_rlm_graph(root, root, settings=settings)
            compile_graph = builder.compile if at_entry else functools.partial(StateGraph.compile, builder)
            graph = compile_graph(checkpointer=saver)
            config = {"configurable": {"thread_id": "t"}}
            result = await graph.ainvoke({"query": "q", "contexts": [text]}, config)
            assert result["answer"] == "done", result
        await close_sandboxes()
        return stored_bytes(Path(tmp) / DATABASE), folder_bytes(Path(tmp) / "blobs")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=10)
    args = parser.parse_args()
    for name, at_entry in (("StateGraph.compile", False), ("the RLM's compile", True)):
        checkpoints, blobs = asyncio.run(measure(args.mb, at_entry))
        print(f"{name:30s} checkpoints {checkpoints / 1e6:8.3f} MB, blob store {blobs / 1e6:8.3f} MB")


if __name__ == "__main__":
    main()
