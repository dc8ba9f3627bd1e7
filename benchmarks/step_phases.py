"""Where one root step's time goes, in process: the graph's custom events time the root model's
reply (`step`), the cell and its snapshot (`code` to `output`), and the rest (checkpoints, the
other nodes, the next request) until the next reply. The root model is
benchmarks/trajectory_server.py over real HTTP, as in benchmarks.side_by_side.

    python -m benchmarks.step_phases [--sizes 1MB,100MB] [--sandboxes local,docker] [--steps 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from benchmarks.side_by_side import context_file
from benchmarks.trajectory_server import serving
from langgraph_rlm.graph.config import RLMSettings
from langgraph_rlm.threads import run_turn
from tests.conftest import TEST_IMAGE

COLUMNS = ("step", "reply to cell", "cell", "snapshot", "rest")


async def phases(label: str, sandbox: str, steps: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="rlm-phases-") as tmp, serving(steps, Path(tmp) / "log") as url:
        events: list[tuple[float, str, float]] = []

        def record(event: dict) -> None:
            events.append((time.perf_counter(), event.get("event", ""), event.get("snapshot_seconds", 0.0)))

        settings = RLMSettings(
            model="openai/scripted",
            sub_model="openai/scripted",
            api_base=url,
            state_dir=f"{tmp}/state",
            sandbox=sandbox,
            docker_image=TEST_IMAGE,
            max_iterations=steps + 2,
            compact_turns=False,
            path_contexts=True,
        )
        await run_turn(settings, "phases", "How long is the context?", [str(context_file(label))], record)
    replies = [t for t, kind, _ in events if kind == "step"]
    cells = [t for t, kind, _ in events if kind == "code"]
    outputs = [(t, snapshot) for t, kind, snapshot in events if kind == "output"]
    first = 2  # the first steps start the sandbox and load the context
    gap = statistics.median(b - a for a, b in zip(replies[first:], replies[first + 1 :], strict=False))
    to_cell = statistics.median(c - r for r, c in zip(replies[first:], cells[first:], strict=False))
    cell = statistics.median(o - c for c, (o, _) in zip(cells[first:], outputs[first:], strict=False))
    snapshot = statistics.median(s for _, s in outputs[first:])
    rest = gap - to_cell - cell
    return {"step": gap, "reply to cell": to_cell, "cell": cell, "snapshot": snapshot, "rest": rest}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1MB,100MB")
    parser.add_argument("--sandboxes", default="local,docker")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    print("| context | sandbox | step (median) | reply to cell | cell + snapshot | snapshot | rest |")
    print("|---|---|---|---|---|---|---|")
    for label in args.sizes.split(","):
        for sandbox in args.sandboxes.split(","):
            ms = {k: v * 1000 for k, v in (await phases(label, sandbox, args.steps)).items()}
            cells = " | ".join(f"{ms[k]:.1f} ms" for k in COLUMNS)
            print(f"| {label} | {sandbox} | {cells} |", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
