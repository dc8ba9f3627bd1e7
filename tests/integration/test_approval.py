"""Human approval of code (`--approve` / `approve_code`): the person at the terminal approves,
edits or rejects each cell before it runs, and the run goes on from what they decided."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import RLM, need_bwrap, rlm_environment, run_rlm
from tests.integration.test_langgraph_server import dev_server
from tests.openai_server import ScriptedOpenAIServer, is_root_call, root_step

STEPS = [
    "```repl\nx = 21\nprint('x is set')\n```",
    "```repl\nx = x * 100\nprint('x multiplied')\n```",
    "```repl\nx = -1\nprint('x', 'ruined')\n```",
    "```repl\nFINAL(x)\n```",
]
PROMPT = b"[a]pprove, [e]dit or [r]eject? "
MAX_TIME = 20
STYLE = re.compile(rb"\x1b\[[0-9;]*m")


def model(messages):
    return STEPS[min(root_step(messages), len(STEPS) - 1)] if is_root_call(messages) else "summary"


class Terminal:
    """`rlm` on a pseudo-terminal, as a person runs it: what it wrote so far, and lines typed in."""

    def __init__(self, args: list[str], state_dir: Path, env: dict[str, str]) -> None:
        self.master, terminal = os.openpty()
        self.process = subprocess.Popen(
            [*RLM, *args],
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            env=rlm_environment(state_dir, {"TERM": "xterm-256color", "COLUMNS": "200", **env}),
            start_new_session=True,
        )
        os.close(terminal)
        self.written = bytearray()
        self.seen = 0

    def expect(self, wanted: bytes, seconds: float = 120) -> bytes:
        """Everything written since the last call, up to and including `wanted`, without colours."""
        deadline = time.monotonic() + seconds
        while wanted not in (text := STYLE.sub(b"", bytes(self.written)))[self.seen :]:
            if time.monotonic() > deadline or not self.read():
                raise AssertionError(f"no {wanted!r} in {text[self.seen :]!r}")
        end = text.index(wanted, self.seen) + len(wanted)
        shown, self.seen = text[self.seen : end], end
        return shown

    def read(self) -> bool:
        ready, _, _ = select.select([self.master], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the command has closed the terminal
                return False
            self.written += chunk
            return bool(chunk)
        return self.process.poll() is None

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def finish(self) -> tuple[int, str]:
        while self.read():
            pass
        return self.process.wait(timeout=30), self.written.decode(errors="replace")

    def close(self) -> None:
        self.process.kill()
        os.close(self.master)


def test_a_person_approves_edits_and_rejects_cells_on_the_terminal(tmp_path):
    need_bwrap()
    context = tmp_path / "notes.txt"
    context.write_text("some notes")
    with ScriptedOpenAIServer(model) as server:
        args = ["run", "what is x?", "-c", str(context), "--approve", "--max-time", str(MAX_TIME)]
        terminal = Terminal([*args, "--model", "openai/scripted", "--api-base", server.url], tmp_path, {})
        try:
            assert b"x = 21" in terminal.expect(PROMPT)
            time.sleep(MAX_TIME + 2)  # a pause longer than max_time, which counts only the work
            terminal.type("a")
            shown = terminal.expect(PROMPT)
            assert b"x is set" in shown and b"x = x * 100" in shown
            terminal.type("e")
            terminal.expect(b"a line holding only .")
            for line in ("x = x * 2", "print('x doubled')", "."):
                terminal.type(line)
            shown = terminal.expect(PROMPT)
            assert b"x doubled" in shown and b"x multiplied" not in shown and b"x = -1" in shown
            terminal.type("r")
            terminal.expect(b"message to the model: ")
            terminal.type("leave x alone, it is right")
            assert b"FINAL(x)" in terminal.expect(PROMPT)
            terminal.type("approve")
            code, written = terminal.finish()
        finally:
            terminal.close()
    assert code == 0, written
    assert re.search(r"^42\r?$", written, re.M), written
    assert "x ruined" not in written and "max_time" not in written
    last_prompt = str(server.received[-1])
    assert "leave x alone, it is right" in last_prompt and "x = x * 2" in last_prompt
    status = run_rlm(["status"], tmp_path)
    assert re.search(r"│ x\s+│ int", status.stdout), status.stdout


def test_chat_edits_a_cell_in_the_users_editor(tmp_path):
    need_bwrap()
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys, pathlib\np = pathlib.Path(sys.argv[1])\np.write_text(p.read_text().replace('100', '2'))\n"
    )
    with ScriptedOpenAIServer(model) as server:
        flags = ["--approve", "--model", "openai/scripted", "--api-base", server.url]
        terminal = Terminal(["chat", *flags], tmp_path, {"EDITOR": f"{sys.executable} {editor}"})
        try:
            terminal.expect(b"you> ")
            terminal.type("what is x?")
            terminal.expect(PROMPT)
            terminal.type("a")
            terminal.expect(PROMPT)
            terminal.type("e")
            assert b"x = -1" in terminal.expect(PROMPT)
            terminal.type("r")
            terminal.expect(b"message to the model: ")
            terminal.type("no")
            terminal.expect(PROMPT)
            terminal.type("a")
            assert re.search(rb"^42\r?$", terminal.expect(b"you> "), re.M)
            terminal.type("/exit")
            code, written = terminal.finish()
        finally:
            terminal.close()
    assert code == 0, written


def test_a_question_stopped_at_the_prompt_comes_back_to_the_same_cell_and_only_with_approval(tmp_path):
    need_bwrap()
    with ScriptedOpenAIServer(model) as server:
        args = ["run", "what is x?", "--model", "openai/scripted", "--api-base", server.url]
        first = Terminal([*args, "--approve"], tmp_path, {})
        try:
            first.expect(PROMPT)
            os.killpg(first.process.pid, signal.SIGINT)
            code, written = first.finish()
        finally:
            first.close()
        assert code == 130, written
        unapproved = run_rlm(args, tmp_path)
        assert unapproved.returncode == 2
        assert "waits for approval of a cell: ask again with --approve" in unapproved.stderr
        assert "x is set" not in unapproved.stderr
        again = Terminal([*args, "--approve"], tmp_path, {})
        try:
            assert b"x = 21" in again.expect(PROMPT)
            assert len(server.received) == 1
            again.type("a")
            for _ in STEPS[1:]:
                again.expect(PROMPT)
                again.type("a")
            code, written = again.finish()
        finally:
            again.close()
    assert code == 0 and re.search(r"^-1\r?$", written, re.M), written


def test_approval_without_a_terminal_is_one_clear_error(tmp_path):
    context = tmp_path / "notes.txt"
    context.write_text("some notes")
    model = ["--model", "openai/scripted", "--api-base", "http://127.0.0.1:9/v1"]
    done = run_rlm(["run", "q", "-c", str(context), "--approve", *model], tmp_path, input="a\n")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --approve asks on the terminal, and stdin is not one (approve through the SDK instead)"
    ]


async def test_a_server_caller_approves_edits_and_rejects_through_command_resume(tmp_path):
    with ScriptedOpenAIServer(model) as server:
        async with dev_server(tmp_path, server) as client:
            thread = (await client.threads.create())["thread_id"]

            async def asked(**run: object) -> dict:
                await client.runs.wait(thread, "rlm", **run)
                (task,) = (await client.threads.get_state(thread))["tasks"]
                return task["interrupts"][0]["value"]

            request = await asked(
                input={"query": "what is x?", "contexts": ["some notes"]}, context={"approve_code": True}
            )
            assert (request["kind"], request["code"]) == ("approve_code", STEPS[0].split("\n", 1)[1][:-4])
            for hostile in ("yes", {"action": "edit", "code": 5}, {"action": "approve", "rm": "-rf"}):
                again = await asked(command={"resume": hostile})
                assert again["code"] == request["code"] and "\n" not in again["error"], again
            assert "x = x * 100" in (await asked(command={"resume": {"action": "approve"}}))["code"]
            edit = {"action": "edit", "code": "x = x * 2"}
            assert "x = -1" in (await asked(command={"resume": edit}))["code"]
            reject = {"action": "reject", "message": "leave x alone, it is right"}
            assert (await asked(command={"resume": reject}))["code"] == "FINAL(x)"
            done = await client.runs.wait(thread, "rlm", command={"resume": {"action": "approve"}})
    assert (done["answer"], done["stop_reason"]) == ("42", "final")
    assert "leave x alone, it is right" in str(server.received[-1])
