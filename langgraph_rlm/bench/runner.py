"""Runs a benchmark: each run one question on a fresh thread through the real graph, its context
a file, timed and scored."""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from langgraph_rlm.bench.progress import RunProgress
from langgraph_rlm.bench.scoring import is_correct
from langgraph_rlm.bench.tasks import make_task
from langgraph_rlm.graph.config import RLMSettings
from langgraph_rlm.llm.usage import Usage, unpriced
from langgraph_rlm.threads import run_turn, thread_values


async def run_bench(
    name: str,
    sizes: list[int],
    runs: int,
    seed: int,
    settings: RLMSettings,
    progress: RunProgress,
) -> list[dict[str, Any]]:
    """A run that fails (the model's reply breaks the run, a window overflows) counts as wrong and
    the benchmark goes on; its error is kept with it."""
    batch = f"bench-{name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rlm-bench-") as folder:
        for tokens in sizes:
            for run in range(1, runs + 1):
                progress.start(tokens, run)
                task = make_task(name, tokens, f"{seed}.{run}")
                path = Path(folder) / f"{name}-{tokens}-{run}.txt"
                path.write_text(task.context, encoding="utf-8")
                thread = f"{batch}-{tokens}-{run}"
                started = time.perf_counter()
                answer, error = "", None
                try:
                    answer = await run_turn(settings, thread, task.question, [str(path)], progress)
                except Exception as exc:
                    error = " ".join(str(exc).split()) or type(exc).__name__
                seconds = time.perf_counter() - started
                path.unlink()
                values = await thread_values(settings, thread) or {}
                usage: Usage = values.get("usage", {})
                result = {
                    "task": name,
                    "tokens": tokens,
                    "run": run,
                    "seed": task.seed,
                    "question": task.question,
                    "expected": task.answer,
                    "answer": answer,
                    "correct": error is None and is_correct(task, answer),
                    "input_tokens": usage.get("input_tokens", 0),
                    "output_tokens": usage.get("output_tokens", 0),
                    "cost": None if unpriced(usage) else usage.get("cost", 0.0),
                    "root_calls": usage.get("root_calls", 0),
                    "sub_calls": usage.get("sub_calls", 0),
                    "seconds": round(seconds, 3),
                    "stop_reason": values.get("stop_reason"),
                    "thread": thread,
                    "error": error,
                }
                results.append(result)
                progress.done(result)
    return results
