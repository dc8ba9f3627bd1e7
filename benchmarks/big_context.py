"""What a big file context costs: time to store it, time until the REPL holds it, time to search
it, and the host process's peak memory, against a tiny context in the same sandbox.

Each case runs in a fresh process (the host: the graph, the blob store, the sandbox's channel)
whose peak resident memory (VmHWM) is the figure; the REPL's cells time themselves. A scripted
root model runs four cells: `len(context)`, the REPL's `grep` for one line, a plain
`re.findall` over the whole context, FINAL.

    python -m benchmarks.big_context [--sizes 100,1000] [--sandboxes local,docker]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

LINE = "2026-11-30T03:00:00.%06d %s request served in 12ms from cache node-7 user=%07d\n"
NEEDLE = "user=0424242"
CELLS = (
    "import time\nprint('loaded', time.time(), len(context))",
    f"import time\nt = time.perf_counter()\nhits = grep({NEEDLE!r})\n"
    "print('grep', time.perf_counter() - t, len(hits))",
    "import re, time\nt = time.perf_counter()\nerrors = len(re.findall(r'ERROR[^\\n]*', context))\n"
    "print('findall', time.perf_counter() - t, errors)",
    "FINAL('done')",
)
DOCKER_IMAGE = "rlm-test-python3:bookworm"


def log_file(megabytes: int, folder: Path) -> Path:
    """Log-like lines, written once per size and reused by later runs."""
    path = folder / f"rlm-big-context-{megabytes}mb.log"
    if not path.exists() or path.stat().st_size < megabytes * 1_000_000:
        partial = path.with_suffix(".part")
        with open(partial, "w") as out:
            i = 0
            while out.tell() < megabytes * 1_000_000:
                lines = (LINE % (n, "ERROR" if n % 97 == 0 else "INFO", n) for n in range(i, i + 10_000))
                out.write("".join(lines))
                i += 10_000
        partial.replace(path)
    return path


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


async def one_case(path: Path, sandbox: str) -> dict[str, float]:
    """Runs in the measured process: store, then a question whose cells time themselves."""
    from langgraph_rlm import build_rlm_graph, close_sandboxes
    from langgraph_rlm.persistence.blobs import FileBlobStore
    from tests.scripted_models import ScriptedChatModel, steps

    replies = [f"```repl\n{cell}\n```" for cell in CELLS]
    root = ScriptedChatModel(respond=steps(*replies))
    with tempfile.TemporaryDirectory(dir=path.parent) as state:
        started = time.perf_counter()
        sha, _ = await asyncio.to_thread(FileBlobStore(Path(state) / "blobs").put_file, path)
        stored = time.perf_counter() - started
        graph = build_rlm_graph(
            root,
            root,
            state_dir=state,
            sandbox=sandbox,
            docker_image=DOCKER_IMAGE,
            compact_turns=False,
            path_contexts=True,
        ).compile()
        ref = {"sha": sha, "name": "", "label": path.name, "source": str(path)}
        printed: dict[str, list[str]] = {}
        graph_started = time.time()
        async for event in graph.astream({"query": "q", "contexts": [ref]}, stream_mode="custom"):
            if event.get("event") == "output":
                for line in event["output"].splitlines():
                    words = line.split()
                    if words and words[0] in ("loaded", "grep", "findall"):
                        printed[words[0]] = words[1:]
        await close_sandboxes()
    return {
        "store_s": stored,
        "load_s": float(printed["loaded"][0]) - graph_started,
        "characters": int(printed["loaded"][1]),
        "grep_s": float(printed["grep"][0]),
        "grep_hits": int(printed["grep"][1]),
        "findall_s": float(printed["findall"][0]),
        "errors": int(printed["findall"][1]),
        "peak_rss_mb": peak_rss_mb(),
    }


def run_case(path: Path, sandbox: str) -> dict[str, float]:
    """One case in a fresh process, so each peak is that case's alone."""
    command = [sys.executable, "-m", "benchmarks.big_context", "--case", str(path), sandbox]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=Path(__file__).parents[1])
    if done.returncode != 0:
        raise RuntimeError(f"case {path.name} on {sandbox} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000", help="context sizes in MB")
    parser.add_argument("--sandboxes", default="local,docker")
    parser.add_argument("--folder", default="/tmp")
    parser.add_argument("--case", nargs=2, metavar=("PATH", "SANDBOX"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(asyncio.run(one_case(Path(args.case[0]), args.case[1]))))
        return
    folder = Path(args.folder)
    tiny = folder / "rlm-big-context-tiny.log"
    tiny.write_text(LINE % (0, "INFO", 424242) * 10)
    files = [(int(mb), log_file(int(mb), folder)) for mb in args.sizes.split(",")]
    columns = ("sandbox", "context", "store", "loaded in the REPL", "store + load", "grep", "re.findall")
    print("| " + " | ".join((*columns, "host peak RSS", "above tiny")) + " |")
    print("|---" * (len(columns) + 2) + "|")
    for sandbox in args.sandboxes.split(","):
        base = run_case(tiny, sandbox)
        rows = [("tiny", base)] + [(f"{mb} MB", run_case(path, sandbox)) for mb, path in files]
        for label, r in rows:
            print(
                f"| {sandbox} | {label} | {r['store_s']:.2f} s | {r['load_s']:.2f} s | "
                f"{r['store_s'] + r['load_s']:.2f} s | {r['grep_s']:.2f} s | {r['findall_s']:.2f} s | "
                f"{r['peak_rss_mb']:.0f} MB | {r['peak_rss_mb'] - base['peak_rss_mb']:+.0f} MB |"
            )


if __name__ == "__main__":
    main()
