"""What checkpoints cost per step: bytes written to SQLite by a question of many steps.

A scripted root model answers in N steps, each reply about 3 KB (reasoning, then code that prints
about 1 KB), with a SQLite checkpointer, in the bubblewrap sandbox. Reported: bytes in the
checkpoint tables after each tenth of the steps and the growth per step; the second half's
growth per step against the first half's shows whether storage is linear (ratio near 1) or
quadratic (ratio near 3).

    python -m benchmarks.checkpoint_growth [--steps 30] [--reply-kb 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import tempfile
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from langgraph_rlm import build_rlm_graph, close_sandboxes
from tests.scripted_models import ScriptedChatModel, steps


def reply(step: int, reply_kb: int) -> str:
    reasoning = f"Step {step}: looking further at the data. " * (reply_kb * 1024 // 40)
    return f"{reasoning}\n```repl\nprint('row {step} ' * 100)\n```"


def stored_bytes(database: Path) -> int:
    with sqlite3.connect(database) as conn:
        checkpoints = conn.execute(
            "select coalesce(sum(length(checkpoint) + length(metadata)), 0) from checkpoints"
        )
        writes = conn.execute("select coalesce(sum(length(value)), 0) from writes")
        return checkpoints.fetchone()[0] + writes.fetchone()[0]


async def measure(steps_count: int, reply_kb: int) -> list[tuple[int, int]]:
    """(steps, bytes stored) for growing questions, each on its own thread and database."""
    points = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sorted({max(1, steps_count * k // 3) for k in (1, 2, 3)}):
            replies = [reply(i, reply_kb) for i in range(1, n)] + ["```repl\nFINAL('done')\n```"]
            root = ScriptedChatModel(respond=steps(*replies))
            database = Path(tmp) / f"threads-{n}.sqlite"
            async with AsyncSqliteSaver.from_conn_string(str(database)) as saver:
                graph = build_rlm_graph(
                    root,
                    root,
                    state_dir=str(Path(tmp) / "state"),
                    max_iterations=n + 5,
                    compact_turns=False,
                    context_window=10_000_000,
                ).compile(checkpointer=saver)
                config = {"configurable": {"thread_id": f"t{n}"}, "recursion_limit": 10 * n + 50}
                result = await graph.ainvoke({"query": "q", "contexts": ["some text"]}, config)
                assert result["answer"] == "done", result
            points.append((n, stored_bytes(database)))
        await close_sandboxes()
    return points


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--reply-kb", type=int, default=3)
    args = parser.parse_args()
    points = asyncio.run(measure(args.steps, args.reply_kb))
    for n, size in points:
        print(f"{n:4d} steps: {size / 1e6:8.3f} MB in checkpoints")
    (n1, s1), (n2, s2), (n3, s3) = points
    first, second = (s2 - s1) / (n2 - n1), (s3 - s2) / (n3 - n2)
    print(f"growth per step: {first / 1e3:.1f} KB, then {second / 1e3:.1f} KB (ratio {second / first:.2f})")


if __name__ == "__main__":
    main()
