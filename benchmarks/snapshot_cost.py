"""What a REPL snapshot costs with a large context: storage growth and time per snapshot.

A scripted root model works 30 steps on a 100 MB context in the bubblewrap sandbox, with the
CLI's SQLite checkpointer and blob store. Reported: how much the state directory grew beyond
the context's one stored copy, and the median snapshot time. The baseline, in the same process,
is what a re-pickling REPL pays per step: pickling the namespace with the context inside.

    python -m benchmarks.snapshot_cost [--size-mb 100] [--steps 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pickle
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from langgraph_rlm import build_rlm_graph, close_sandboxes
from tests.scripted_models import ScriptedChatModel, steps

LINE = "2026-11-23T10:00:00 INFO request served in 12ms from cache node-7 user=%06d\n"


def work(step: int) -> str:
    """A typical step: search, keep a few findings, define a helper now and then."""
    search = f"found_{step} = grep('user=0{step:02d}', max_matches=20)"
    if step % 5 == 0:
        return f"```repl\ndef score_{step}(line):\n    return len(line) % 7\n{search}\n```"
    return f"```repl\n{search}\nprint(len(found_{step}))\n```"


def tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp) / "context.log"
        with open(context, "w") as out:
            for i in range(args.size_mb * 1_000_000 // len(LINE % 0)):
                out.write(LINE % i)
        state = Path(tmp) / "state"
        replies = [work(i) for i in range(1, args.steps)] + ["```repl\nFINAL(len(found_1))\n```"]
        root = ScriptedChatModel(respond=steps(*replies))
        snapshot_times: list[float] = []
        state.mkdir()
        async with AsyncSqliteSaver.from_conn_string(str(state / "threads.sqlite")) as saver:
            graph = build_rlm_graph(
                root, root, state_dir=str(state), max_iterations=args.steps + 1, compact_turns=False
            ).compile(checkpointer=saver)
            config = {"configurable": {"thread_id": "bench"}, "recursion_limit": 10 * args.steps}
            stream = graph.astream({"query": "q", "contexts": [str(context)]}, config, stream_mode="custom")
            first = True
            async for event in stream:
                if event.get("event") == "output":
                    if first:
                        start_size, first = tree_size(state), False
                        start_blobs = tree_size(state / "blobs")
                    snapshot_times.append(event["snapshot_seconds"])
            end_size = tree_size(state)
            blobs_growth = tree_size(state / "blobs") - start_blobs
            await close_sandboxes()
        text = context.read_text()
        naive = []
        for _ in range(3):
            started = time.perf_counter()
            pickle.dumps({"context": text, "found": ["x"] * 20})
            naive.append(time.perf_counter() - started)
    context_mb = context_size = args.size_mb
    median = statistics.median(snapshot_times)
    print(f"context {context_size} MB, {len(snapshot_times)} steps")
    print(
        f"state dir after the first step: {start_size / 1e6:.1f} MB (the context's one stored copy included)"
    )
    print(f"growth over the remaining steps: {(end_size - start_size) / 1e6:.2f} MB")
    print(f"  of which the blob store: {blobs_growth / 1e6:.2f} MB, the checkpoint database the rest")
    print(f"snapshot: median {median * 1000:.1f} ms, max {max(snapshot_times) * 1000:.1f} ms")
    baseline = statistics.median(naive)
    print(f"baseline, re-pickling the namespace with the context: median {baseline * 1000:.0f} ms")
    print(f"ratio baseline / ours: {statistics.median(naive) / median:.0f}x  ({context_mb} MB context)")


if __name__ == "__main__":
    asyncio.run(main())
