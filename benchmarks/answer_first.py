"""When `rlm run`'s answer reaches stdout, against when the process ends (the turn's summary, a
model call, comes after the answer). Needs a model server: by default the real small model that
../shared/tools/real_model/serve.sh serves on port 8321.

    python -m benchmarks.answer_first [--runs 3] [--api-base URL] [--model openai/NAME]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

QUESTION = "How many ERROR lines are there?"
EXAMPLES = Path(__file__).parents[1] / "examples"


def one_run(folder: Path, model: str, api_base: str) -> tuple[float, float, str]:
    """Seconds to the answer's line on stdout, seconds to the exit, and the answer."""
    args = ["rlm", "run", QUESTION, "-c", "examples/sample.log", "--max-iterations", "8"]
    args += ["--max-reply-tokens", "512", "--model", model, "--sub-model", model, "--api-base", api_base]
    started = time.monotonic()
    process = subprocess.Popen(
        args, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )
    assert process.stdout is not None
    answer = process.stdout.readline().decode(errors="replace").strip()
    answered = time.monotonic() - started
    process.wait()
    return answered, time.monotonic() - started, answer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default="openai/qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--api-base", default="http://127.0.0.1:8321/v1")
    options = parser.parse_args()
    for run in range(options.runs):
        with tempfile.TemporaryDirectory() as folder:
            shutil.copytree(EXAMPLES, Path(folder) / "examples")
            answered, ended, answer = one_run(Path(folder), options.model, options.api_base)
        print(
            f"run {run + 1}: answer at {answered:.1f} s, exit at {ended:.1f} s, {ended - answered:.1f} s "
            f"after the answer: {answer[:60]!r}",
            flush=True,
        )


if __name__ == "__main__":
    main()
