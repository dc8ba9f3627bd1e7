"""A first run says what it is doing before anything slow: on a terminal the model, its endpoint
and the sandbox show while the graph loads and the model thinks, not after."""

from __future__ import annotations

import os
import select
import subprocess
import threading
import time

from tests.conftest import RLM, need_bwrap, rlm_environment
from tests.openai_server import ScriptedOpenAIServer, is_root_call

SAID = b"code runs in a local bubblewrap sandbox"


def test_the_run_says_what_it_does_while_the_model_has_not_answered(tmp_path):
    need_bwrap()
    context = tmp_path / "notes.txt"
    context.write_text("some notes")
    answer = threading.Event()

    def slow_model(messages):
        answer.wait(120)
        return "```repl\nFINAL('done')\n```" if is_root_call(messages) else "summary"

    with ScriptedOpenAIServer(slow_model) as server:  # it answers only after the check below
        master, terminal = os.openpty()
        args = ["run", "q", "-c", str(context), "--model", "openai/scripted", "--api-base", server.url]
        env = rlm_environment(tmp_path / "state", {"TERM": "xterm-256color", "COLUMNS": "200"})
        process = subprocess.Popen(
            [*RLM, *args], stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal, env=env
        )
        os.close(terminal)
        shown = bytearray()
        try:
            deadline = time.monotonic() + 120
            while SAID not in shown and time.monotonic() < deadline and process.poll() is None:
                if select.select([master], [], [], 1)[0]:
                    shown += os.read(master, 65536)
            assert SAID in shown, shown[-2000:]
            assert f"openai/scripted at {server.url}".encode() in shown
        finally:
            answer.set()
            while process.poll() is None or select.select([master], [], [], 0.2)[0]:
                try:
                    shown += os.read(master, 65536)
                except OSError:
                    break
            process.wait(120)
            os.close(master)
    assert process.returncode == 0, shown[-2000:]
    assert b"done" in shown
