"""SIGKILL in the middle of a run loses nothing: the same question on the same thread resumes."""

from __future__ import annotations

import os
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
