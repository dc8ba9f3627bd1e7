"""What a context sent as text costs in storage: bytes in the checkpoint tables and the blob
store after a two-step question about a 10 MB text, with LangGraph's own SQLite saver (the
baseline: the text reaches checkpoints before any node runs) and with the RLM's saver, which
keeps large text in the blob store.

    python -m benchmarks.inline_context [--mb 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from benchmarks.checkpoint_growth import stored_bytes
from langgraph_rlm import RLMSettings, build_rlm_graph, close_sandboxes
from langgraph_rlm.persistence.checkpointer import DATABASE, open_checkpointer
from tests.scripted_models import ScriptedChatModel, steps


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


async def measure(megabytes: int, offloading: bool) -> tuple[int, int]:
    """(bytes in checkpoints and writes, bytes in the blob store) for one question."""
    text = "a line of the context\n" * (megabytes * 1_000_000 // 22)
    replies = steps("```repl\nprint(len(context_0))\n```", "```repl\nFINAL('done')\n```")
    root = ScriptedChatModel(respond=replies)
    with tempfile.TemporaryDirectory() as tmp:
        settings = RLMSettings(state_dir=tmp, compact_turns=False)
        plain = AsyncSqliteSaver.from_conn_string(f"{tmp}/{DATABASE}")
        async with open_checkpointer(settings) if offloading else plain as saver:
            graph = build_rlm_graph(root, root, settings=settings).compile(checkpointer=saver)
            config = {"configurable": {"thread_id": "t"}}
            result = await graph.ainvoke({"query": "q", "contexts": [text]}, config)
            assert result["answer"] == "done", result
        await close_sandboxes()
        return stored_bytes(Path(tmp) / DATABASE), folder_bytes(Path(tmp) / "blobs")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=10)
    args = parser.parse_args()
    for name, offloading in (("LangGraph's AsyncSqliteSaver", False), ("the RLM's saver", True)):
        checkpoints, blobs = asyncio.run(measure(args.mb, offloading))
        print(f"{name:30s} checkpoints {checkpoints / 1e6:8.3f} MB, blob store {blobs / 1e6:8.3f} MB")


if __name__ == "__main__":
    main()
