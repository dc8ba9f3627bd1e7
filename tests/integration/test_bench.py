"""`rlm bench` as a user runs it against their model: a subprocess, the real litellm HTTP path,
bubblewrap; the model is scripted to solve the generated tasks with REPL code, or to miss them."""

from __future__ import annotations

import json
import re
import struct

import pytest

from tests.conftest import need_bwrap, run_rlm
from tests.integration.test_cli import model_flags
from tests.openai_server import ScriptedOpenAIServer, is_root_call, last_question

SOLVE_NIAH = "```repl\nimport re\nFINAL(re.search(r'secret code is (\\d+)', context).group(1))\n```"
SOLVE_COUNT = "```repl\nimport re\nFINAL(str(len(re.findall(r'label={label} ', context))))\n```"
SOLVE_MOST = (
    "```repl\nimport collections, re\n"
    "FINAL(collections.Counter(re.findall(r'label=(\\w+)', context)).most_common(1)[0][0])\n```"
)
SIZES = ["--sizes", "10,12", "--runs", "2"]


def solver(messages):
    """Reads the task off the question as a capable model would, and answers it with code."""
    if not is_root_call(messages):
        return "summary"
    question = last_question(messages)
    if "secret code" in question:
        return SOLVE_NIAH
    counted = re.search(r"label=(\w+)", question)
    return SOLVE_COUNT.format(label=counted.group(1)) if counted else SOLVE_MOST


def guesser(messages):
    return "```repl\nFINAL('I could not find it')\n```" if is_root_call(messages) else "summary"


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("task", ["niah", "aggregate"])
def test_a_model_that_solves_the_task_scores_every_run_at_every_size(task, tmp_path):
    need_bwrap()
    report, chart = tmp_path / "bench.json", tmp_path / "bench.png"
    with ScriptedOpenAIServer(solver) as server:
        flags = [*SIZES, "--json", str(report), "--plot", str(chart), *model_flags(server)]
        done = run_rlm(["bench", task, *flags], tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.search(r"1k tokens\s+│ 2\s+│ 100% \(2/2\)", done.stdout), done.stdout
    assert re.search(r"4k tokens\s+│ 2\s+│ 100% \(2/2\)", done.stdout), done.stdout
    assert "openai/scripted" in done.stdout
    assert len(re.findall(r"run \d/2: right", done.stderr)) == 4
    saved = json.loads(report.read_text())
    assert [row["tokens"] for row in saved["sizes"]] == [1024, 4096]
    assert [row["accuracy"] for row in saved["sizes"]] == [1.0, 1.0]
    runs = saved["runs"]
    assert len(runs) == 4 and all(r["correct"] and r["error"] is None for r in runs)
    assert all(r["answer"] == r["expected"] for r in runs)
    assert len({r["expected"] for r in runs}) > 1
    assert all(r["input_tokens"] > 0 and r["root_calls"] == 1 for r in runs)
    assert all(r["cost"] is None for r in runs)
    assert saved["sizes"][0]["cost"] is None and "unknown" in done.stdout
    assert png_size(chart) == (640, 480)
    roots = [r for r in server.log if is_root_call(r["messages"])]
    assert len(roots) == 4
    assert all(len(str(r["messages"])) < 4000 for r in roots)
    assert len(server.log) == 4


def test_a_model_that_misses_scores_zero_and_each_run_is_a_thread(tmp_path):
    need_bwrap()
    with ScriptedOpenAIServer(guesser) as server:
        done = run_rlm(["bench", "aggregate", *SIZES, "--json", "-", *model_flags(server)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.search(r"1k tokens\s+│ 2\s+│ 0% \(0/2\)", done.stderr)
    saved = json.loads(done.stdout)
    assert [row["accuracy"] for row in saved["sizes"]] == [0.0, 0.0]
    assert all(r["answer"] == "I could not find it" for r in saved["runs"])
    assert len({r["thread"] for r in saved["runs"]}) == 4
    status = run_rlm(["status", "--thread", saved["runs"][-1]["thread"]], tmp_path)
    assert status.returncode == 0, status.stderr
    assert saved["runs"][-1]["question"] in status.stdout


def test_a_model_that_cannot_be_reached_fails_in_one_line(tmp_path):
    need_bwrap()
    flags = ["--model", "openai/scripted", "--api-base", "http://127.0.0.1:9/v1", "--sub-call-retries", "0"]
    done = run_rlm(["bench", "niah", "--sizes", "10", *flags], tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("error: every run failed; the first: ")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sizes", "13,lots"], "error: --sizes: 'lots' is not a size"),
        (["--sizes", "21"], "error: --sizes: '21' is 2,097,152 tokens; sizes go from 256 (8) to 1m (20)"),
        (["--runs", "0"], "error: --runs must be at least 1"),
    ],
)
def test_bad_benchmark_input_is_one_line(args, message, tmp_path):
    done = run_rlm(["bench", "niah", *args], tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().startswith(message) and len(done.stderr.strip().splitlines()) == 1
