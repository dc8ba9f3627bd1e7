"""The scripted root model both systems talk to: one OpenAI-compatible server, the same cells.

Each root request is answered by the step it is at (the assistant messages so far), in the
dialect of the system asking (this project ends with `FINAL(...)`, the official `rlms` with
`answer["ready"] = True`). Every root request is logged with its time and the bytes under
`--watch` at that moment, so steps are timed and storage measured at the same place for both.
Sub-calls get "ok" after `--delay` seconds. Run in its own process (off the measured host's GIL):

    python -m benchmarks.trajectory_server --steps 10 --log FILE [--watch DIR] [--batch 1000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.openai_server import ScriptedOpenAIServer


def work(step: int) -> str:
    """A step that touches the context without scanning it: the systems' own cost per step shows."""
    return f"part_{step} = context[{step} * 1000:{step} * 1000 + 1000]\nprint(len(context), len(part_{step}))"


def timed_batch(prompts: int) -> str:
    return (
        "import time\nstarted = time.perf_counter()\n"
        f"answers = llm_query_batched([f'prompt {{i}}' for i in range({prompts})])\n"
        f"assert answers == ['ok'] * {prompts}, answers[:3]\n"
        "elapsed = time.perf_counter() - started\n"
    )


def final(value: str, official: bool) -> str:
    if official:
        return f'answer["content"] = str({value})\nanswer["ready"] = True'
    return f"FINAL({value})"


def root_reply(step: int, steps: int, batch: int, official: bool) -> str:
    if batch:
        code = timed_batch(batch) + final("elapsed", official)
    elif step < steps - 1:
        code = work(step)
    else:
        code = final("len(context)", official)
    return f"```repl\n{code}\n```"


def stored(folder: Path | None) -> tuple[int, int]:
    """(bytes under `folder`, bytes of the official docker REPL's state.dill, rewritten each step)."""
    if folder is None:
        return 0, 0
    files = [(f.name, f.stat().st_size) for f in folder.rglob("*") if f.is_file()]
    return sum(size for _, size in files), sum(size for name, size in files if name == "state.dill")


class TrajectoryScript:
    def __init__(self, steps: int, batch: int, log: Path, watch: Path | None) -> None:
        self.steps, self.batch, self.log, self.watch = steps, batch, log, watch
        self.lock = threading.Lock()

    def __call__(self, messages: list[dict[str, Any]]) -> str:
        system = str(messages[0].get("content")) if messages and messages[0].get("role") == "system" else ""
        if "Recursive Language Model" not in system:
            return "ok"
        official = 'answer["ready"]' in system
        step = sum(1 for m in messages if m.get("role") == "assistant")
        now = time.time()
        total, dill = stored(self.watch)
        with self.lock, open(self.log, "a") as out:
            out.write(json.dumps({"step": step, "time": now, "bytes": total, "state_dill": dill}) + "\n")
        return root_reply(step, self.steps, self.batch, official)


@contextmanager
def serving(steps: int, log: Path, *options: str) -> Iterator[str]:
    """The server in a process of its own for as long as the block runs; yields its URL."""
    command = [sys.executable, "-m", "benchmarks.trajectory_server", "--steps", str(steps), "--log", str(log)]
    server = subprocess.Popen([*command, *options], stdout=subprocess.PIPE, text=True)
    try:
        yield server.stdout.readline().strip()
    finally:
        server.kill()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=0, help="One step: time llm_query_batched of N prompts.")
    parser.add_argument("--delay", type=float, default=0.0, help="Seconds each sub-call takes.")
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--watch", type=Path)
    args = parser.parse_args()
    script = TrajectoryScript(args.steps, args.batch, args.log, args.watch)
    server = ScriptedOpenAIServer(script)
    delay = args.delay

    def respond(messages: list[dict[str, Any]]) -> str:
        text = script(messages)
        if text == "ok":
            time.sleep(delay)
        return text

    server.respond = respond
    print(server.url, flush=True)
    server.httpd.serve_forever()


if __name__ == "__main__":
    main()
