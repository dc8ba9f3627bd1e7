"""SIGKILL in the middle of a run loses nothing: the same question on the same thread resumes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

from tests.conftest import RLM, need_bwrap, run_rlm
from tests.openai_server import ScriptedOpenAIServer, is_root_call, root_step

STEPS = [
    "```repl\nbefore = 'kept'\nslow = llm_query('take your time')\nprint(slow)\n```",
    "```repl\nFINAL(f'{before} {slow}')\n```",
]


def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path, database):
    need_bwrap()
    calls = {"slow": 0}

    def model(messages):
        if is_root_call(messages):
            return STEPS[min(root_step(messages), 1)]
        if messages[-1]["content"] == "take your time":
            calls["slow"] += 1
            if calls["slow"] == 1:
                time.sleep(30)
            return "finally"
        return "summary"

    with ScriptedOpenAIServer(model) as server:
        flags = [
            "--model",
            "openai/m",
            "--sub-model",
            "openai/m",
            "--api-base",
            server.url,
            "--thread",
            "crash",
            *database.flags,
        ]
        env = {**os.environ, "RLM_STATE_DIR": str(tmp_path)}
        victim = subprocess.Popen([*RLM, "run", "the question", *flags], env=env, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while calls["slow"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert calls["slow"] == 1, "the slow sub-call never arrived"
        victim.send_signal(signal.SIGKILL)
        victim.wait()

        again = run_rlm(["run", "the question", *flags], tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "kept finally"
    assert "resuming the unfinished question" in again.stderr
    root_prompts = [m for m in server.received if is_root_call(m)]
    assert [root_step(m) for m in root_prompts] == [0, 1], "step 1's root call must not be redone"
    assert calls["slow"] == 2


def test_a_sandbox_that_cannot_be_restarted_ends_the_run_and_the_thread_resumes(tmp_path):
    """bubblewrap failing after the worker died (say, namespaces exhausted) is an error, not an answer."""
    need_bwrap()
    broken = tmp_path / "bwrap-broken"
    wrapper = tmp_path / "bin" / "bwrap"
    wrapper.parent.mkdir()
    wrapper.write_text(
        f"#!/bin/sh\nif [ -e {broken} ]; then\n"
        "  echo 'bwrap: Creating new namespace failed: No space left on device' >&2; exit 1\nfi\n"
        f'exec {shutil.which("bwrap")} "$@"\n'
    )
    wrapper.chmod(0o755)

    def model(messages):
        if not is_root_call(messages):
            return "summary"
        step = root_step(messages)
        if step == 1:
            broken.touch()
            return "```repl\nimport os\nos._exit(3)\n```"
        return "```repl\nkept = 41\n```" if step == 0 else "```repl\nFINAL(kept + 1)\n```"

    with ScriptedOpenAIServer(model) as server:
        flags = ["--model", "openai/m", "--sub-model", "openai/m", "--api-base", server.url]
        env = {"PATH": f"{wrapper.parent}:{os.environ['PATH']}"}
        failed = run_rlm(["run", "the question", *flags], tmp_path, env=env)
        assert failed.returncode == 6, failed.stdout
        assert failed.stdout == ""
        lines = failed.stderr.strip().splitlines()
        assert lines[-1].startswith("error:") and "No space left on device" in lines[-1]
        assert "ask the same question again" in lines[-1] and "Traceback" not in failed.stderr

        broken.unlink()
        again = run_rlm(["run", "the question", *flags], tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert "resuming the unfinished question" in again.stderr
    assert again.stdout.strip() == "42"
    root_prompts = [m for m in server.received if is_root_call(m)]
    assert [root_step(m) for m in root_prompts] == [0, 1, 2], "no step's root call is redone"
    assert "restored to its state before this cell" in root_prompts[-1][-1]["content"]
