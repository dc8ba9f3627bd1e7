"""How long llm_query_batched takes for 100 prompts when every answer takes 0.2 s.

Runs the real path: a scripted root model in process, the REPL in the bubblewrap sandbox,
sub-calls over HTTP (an `openai/...` model, called directly) to a local OpenAI-compatible server
in a process of its own (as a real model server would be). The batch is timed inside the REPL;
the baseline, in the same process, is one llm_query. Usage:

    python -m benchmarks.subcall_batch [--prompts 100] [--delay 0.2] [--repeats 5] [--sandbox local]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from langgraph.checkpoint.memory import InMemorySaver

from langgraph_rlm import build_rlm_graph, close_sandboxes
from tests.scripted_models import ScriptedChatModel, steps

SUB_MODEL = "openai/gpt-5-mini"


async def timed_cell(url: str, code: str, state_dir: str, sandbox: str) -> float:
    timed = f"import time\nstarted = time.perf_counter()\n{code}\nFINAL(time.perf_counter() - started)"
    cell = f"```repl\n{timed}\n```"
    root = ScriptedChatModel(respond=steps(cell))
    graph = build_rlm_graph(
        root,
        SUB_MODEL,
        api_base=url,
        state_dir=state_dir,
        sandbox=sandbox,
        compact_turns=False,
        cache_sub_calls=False,
    ).compile(checkpointer=InMemorySaver())
    result = await graph.ainvoke({"query": "benchmark"}, {"configurable": {"thread_id": "bench"}})
    return float(result["answer"])


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sandbox", default="local")
    args = parser.parse_args()
    batch = f"llm_query_batched([f'prompt {{i}}' for i in range({args.prompts})])"
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.openai_server", "--delay", str(args.delay)],
        stdout=subprocess.PIPE,
        text=True,
    )
    url = server.stdout.readline().strip()
    try:
        with tempfile.TemporaryDirectory() as state_dir:
            await timed_cell(url, "llm_query('warm up')", state_dir, args.sandbox)
            single = [
                await timed_cell(url, "llm_query('one')", state_dir, args.sandbox)
                for _ in range(args.repeats)
            ]
            batched = [await timed_cell(url, batch, state_dir, args.sandbox) for _ in range(args.repeats)]
            await close_sandboxes()
    finally:
        server.kill()
    single_median, batch_median = statistics.median(single), statistics.median(batched)
    print(f"sandbox={args.sandbox} prompts={args.prompts} delay={args.delay}s repeats={args.repeats}")
    print(f"one llm_query:           median {single_median:.3f}s")
    spread = f"(min {min(batched):.3f}, max {max(batched):.3f})"
    print(f"llm_query_batched({args.prompts}): median {batch_median:.3f}s  {spread}")
    print(f"ratio batch / one call:  {batch_median / single_median:.1f}x   (serial would be {args.prompts}x)")


if __name__ == "__main__":
    asyncio.run(main())
