"""This project and the official `rlms` package side by side, each as a whole process, on the
same scripted trajectories through the same local server (benchmarks/trajectory_server.py).

Reported per system, sandbox and context size: time to the first root step, per-step median and
p95 (between consecutive root requests, seen by the server), whole run, host peak memory of the
process tree, and bytes written to storage per step. Then llm_query_batched throughput against
the concurrency setting, and the whole-process time of a trivial 2-step question. Markdown
tables to stdout; the step times as a PNG.

    python -m benchmarks.side_by_side [--sizes 1MB,100MB,1GB] [--sandboxes local,docker] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from benchmarks import official_rlms
from benchmarks.measured_process import Measured, run_measured
from benchmarks.trajectory_server import serving
from langgraph_rlm.bench.chart import Chart
from tests.conftest import TEST_IMAGE

SIZES = {"1MB": 10**6, "100MB": 10**8, "1GB": 10**9}
LINE = "2026-11-30T03:00:00 INFO request served in 12ms from cache node-7 user=%08d\n"
QUESTION = "How long is the context?"
SYSTEMS = ("ours", "rlms")
COLORS = {"ours": (31, 119, 180), "rlms": (230, 120, 20)}


@dataclass
class Run:
    system: str
    sandbox: str
    label: str
    measured: Measured
    startup: float
    steps: int
    gaps: list[float]
    stored: list[int]
    state_dill: int
    stored_first: int

    @property
    def failed(self) -> str:
        if self.measured.timed_out:
            return f"capped at {self.measured.seconds:.0f} s, at step {self.steps}"
        if self.measured.returncode:
            return f"failed: {self.measured.stderr.strip().splitlines()[-1:]}"
        return ""


def context_file(label: str) -> Path:
    """Generated once in /tmp and reused across runs (a GB takes a while to write)."""
    path = Path(tempfile.gettempdir()) / f"rlm-side-by-side-{label}.log"
    if not path.exists() or path.stat().st_size != SIZES[label]:
        partial = path.with_suffix(".partial")
        with open(partial, "w") as out:
            block = "".join(LINE % i for i in range(10_000))
            for _ in range(SIZES[label] // len(block) + 1):
                out.write(block)
            out.truncate(SIZES[label])
        partial.rename(path)
    return path


def our_command(
    url: str, context: Path, state: Path, sandbox: str, steps: int, concurrency: int
) -> list[str]:
    return [
        sys.executable, "-m", "langgraph_rlm", "run", QUESTION, "-c", str(context), "-q",
        "--model", "openai/scripted", "--sub-model", "openai/scripted", "--api-base", url,
        "--state-dir", str(state), "--sandbox", sandbox, "--docker-image", TEST_IMAGE,
        "--max-iterations", str(steps + 2), "--no-compact-turns", "--batch-concurrency", str(concurrency),
    ]  # fmt: skip


def run_question(
    system: str,
    sandbox: str,
    context: Path,
    steps: int,
    timeout: float,
    batch: int = 0,
    delay: float = 0.0,
    concurrency: int = 16,
) -> Run:
    with tempfile.TemporaryDirectory(prefix="rlm-sbs-") as tmp:
        state, log = Path(tmp) / "state", Path(tmp) / "roots.jsonl"
        state.mkdir()
        options = ("--watch", str(state), "--batch", str(batch), "--delay", str(delay))
        with serving(steps, log, *options) as url:
            env = {
                **os.environ,
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "RLM_DOCKER_WORKSPACE_DIR": str(state),
            }
            if system == "ours":
                command = our_command(url, context, state, sandbox, steps, concurrency)
            else:
                command = official_rlms.command(url, context, QUESTION, sandbox, steps + 2, concurrency)
            started = time.time()
            try:
                measured = run_measured(command, timeout, env)
            finally:
                if system == "rlms" and sandbox == "docker":
                    remove_containers(official_rlms.IMAGE)
        roots = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    times = [r["time"] for r in roots]
    return Run(
        system,
        sandbox,
        context.name,
        measured,
        startup=times[0] - started if times else float("nan"),
        steps=len(roots),
        gaps=[b - a for a, b in pairwise(times)],
        stored=[b["bytes"] - a["bytes"] for a, b in pairwise(roots)],
        state_dill=max((r["state_dill"] for r in roots), default=0),
        stored_first=roots[0]["bytes"] if roots else 0,
    )


def remove_containers(image: str) -> None:
    """A capped rlms run leaves its `tail -f` container behind; only those of its image go."""
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"ancestor={image}"], capture_output=True, text=True
    ).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def written_per_step(run: Run) -> str:
    if run.system == "rlms" and run.sandbox == "docker":
        return f"{run.state_dill / 1e6:.1f} MB (state.dill rewritten whole)"
    if not any(run.stored):
        return "nothing stored"
    return f"{statistics.median(run.stored) / 1e3:.1f} KB (max {max(run.stored) / 1e6:.2f} MB)"


def steps_table(runs: list[Run]) -> str:
    lines = [
        "| size | sandbox | system | to first step | step median | step p95 | whole run | host peak RSS "
        "| stored before step 1 | written per step |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        size = run.label.removeprefix("rlm-side-by-side-").removesuffix(".log")
        head = f"| {size} | {run.sandbox} | {run.system} |"
        peak = f"{run.measured.peak_rss / 1e6:.0f} MB"
        if run.failed or not run.gaps:
            failed = run.failed or "no steps"
            lines.append(f"{head} {failed} | | | {run.measured.seconds:.1f} s | {peak} | | |")
            continue
        lines.append(
            f"{head} {run.startup:.2f} s | {statistics.median(run.gaps) * 1000:.0f} ms | "
            f"{p95(run.gaps) * 1000:.0f} ms | {run.measured.seconds:.1f} s | {peak} | "
            f"{run.stored_first / 1e6:.1f} MB | {written_per_step(run)} |"
        )
    return "\n".join(lines)


def batch_table(prompts: int, delay: float, concurrencies: list[int], timeout: float) -> str:
    context = context_file("1MB")
    lines = [
        f"| system | concurrency | {prompts} prompts | prompts / s | ideal (concurrency / {delay} s) "
        "| share |",
        "|---|---|---|---|---|---|",
    ]
    for concurrency in concurrencies:
        for system in SYSTEMS:
            run = run_question(system, "local", context, 1, timeout, prompts, delay, concurrency)
            ideal = concurrency / delay
            if run.failed:
                lines.append(f"| {system} | {concurrency} | {run.failed} | | {ideal:.0f} | |")
                continue
            seconds = float(run.measured.stdout.strip().splitlines()[-1])
            rate = prompts / seconds
            lines.append(
                f"| {system} | {concurrency} | {seconds:.2f} s | {rate:.0f} | {ideal:.0f} "
                f"| {rate / ideal:.0%} |"
            )
            print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines)


def first_output(context: Path) -> float:
    """Seconds from spawning `rlm run` to the first thing it writes to a terminal (its spinner)."""
    with tempfile.TemporaryDirectory(prefix="rlm-sbs-") as tmp, serving(2, Path(tmp) / "log") as url:
        command = [a for a in our_command(url, context, Path(tmp), "local", 2, 16) if a != "-q"]
        terminal, child_side = pty.openpty()
        started = time.perf_counter()
        run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=child_side, env=os.environ)
        os.close(child_side)
        ready, _, _ = select.select([terminal], [], [], 60)
        seconds = time.perf_counter() - started if ready else float("nan")
        run.wait(60)
        os.close(terminal)
    return seconds


def startup_table(repeats: int, timeout: float) -> str:
    """A trivial 2-step question on a tiny file, spawn to exit; and for ours, spawn to the first
    output on a terminal."""
    context = Path(tempfile.gettempdir()) / "rlm-side-by-side-tiny.log"
    context.write_text("".join(LINE % i for i in range(20)))
    seconds: dict[str, list[float]] = {system: [] for system in SYSTEMS}
    cpu: dict[str, list[float]] = {system: [] for system in SYSTEMS}
    firsts = []
    for _ in range(repeats):
        for system in SYSTEMS:
            run = run_question(system, "local", context, 2, timeout)
            if run.failed:
                raise SystemExit(f"{system}: the 2-step question {run.failed}")
            seconds[system].append(run.measured.seconds)
            cpu[system].append(run.measured.cpu_seconds)
        firsts.append(first_output(context))
    ours, theirs = statistics.median(seconds["ours"]), statistics.median(seconds["rlms"])
    ours_cpu, theirs_cpu = statistics.median(cpu["ours"]), statistics.median(cpu["rlms"])
    runs = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(seconds["ours"], seconds["rlms"], strict=True))
    return (
        "| | ours (median) | rlms (median) | ratio ours / rlms | each run (ours/rlms) | target |\n"
        "|---|---|---|---|---|---|\n"
        f"| wall | {ours:.2f} s | {theirs:.2f} s | {ours / theirs:.2f} | {runs} | ≤ 1.0 |\n"
        f"| CPU (user + sys) | {ours_cpu:.2f} s | {theirs_cpu:.2f} s | {ours_cpu / theirs_cpu:.2f} | | |\n"
        f"| first output on a terminal (median, max) | {statistics.median(firsts):.2f} s, "
        f"{max(firsts):.2f} s | | | | < 0.5 s |"
    )


def plot(runs: list[Run], labels: list[str], sandboxes: list[str], path: Path) -> None:
    """Median step time against context size: one panel per sandbox, blue ours, orange rlms; a
    capped run has no point."""
    chart = Chart(900, 300 * len(sandboxes), panels=len(sandboxes))
    done = [r for r in runs if not r.failed and r.gaps]
    for index, sandbox in enumerate(sandboxes):
        top = max((statistics.median(r.gaps) * 1000 for r in done if r.sandbox == sandbox), default=1)
        for system in SYSTEMS:
            mine = [r for r in done if r.sandbox == sandbox and r.system == system]
            sizes = [SIZES[r.label.removeprefix("rlm-side-by-side-").removesuffix(".log")] for r in mine]
            values = [statistics.median(r.gaps) * 1000 for r in mine]
            title = f"{sandbox} - median step MS - blue ours, orange rlms"
            axis = [SIZES[label] for label in labels]
            chart.panel(index, title, sizes, values, top, color=COLORS[system], axis=axis)
    path.write_bytes(chart.png())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1MB,100MB,1GB")
    parser.add_argument("--sandboxes", default="local,docker")
    parser.add_argument("--quick", action="store_true", help="5 steps, 100 prompts, one repeat.")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=300.0, help="Cap of one run, seconds.")
    parser.add_argument("--concurrency", default="16,64")
    parser.add_argument("--plot", type=Path, default=Path(__file__).with_name("side_by_side.png"))
    args = parser.parse_args()
    labels = args.sizes.split(",")
    if unknown := set(labels) - SIZES.keys():
        raise SystemExit(f"unknown size {sorted(unknown)[0]}: choose from {', '.join(SIZES)}")
    sandboxes = args.sandboxes.split(",")
    steps, prompts, repeats = (5, 100, 1) if args.quick else (args.steps, 1000, 3)
    official_rlms.ensure_venv()
    if "docker" in sandboxes:
        official_rlms.ensure_image()
    print(f"## Whole process, a 2-step question (local sandbox)\n\n{startup_table(repeats, args.timeout)}\n")
    runs = []
    for label in labels:
        context = context_file(label)
        for sandbox in sandboxes:
            for system in SYSTEMS:
                runs.append(run_question(system, sandbox, context, steps, args.timeout))
                print(steps_table(runs[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(f"## {steps} steps per question\n\n{steps_table(runs)}\n")
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    batches = batch_table(prompts, 0.2, concurrencies, args.timeout)
    print(f"## llm_query_batched, 0.2 s a sub-call\n\n{batches}\n")
    plot(runs, labels, sandboxes, args.plot)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
