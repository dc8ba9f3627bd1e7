"""What the model or the sandbox writes reaches the user's terminal shown, never obeyed, and
never read as rich markup; a redirected answer stays byte for byte what the model gave."""

from __future__ import annotations

import os
import select
import subprocess
import time
from pathlib import Path

from tests.conftest import RLM, need_bwrap, rlm_environment, run_rlm
from tests.openai_server import ScriptedOpenAIServer, is_root_call, root_step

ANSWER = "\x1b]0;pwned\x07\x1b[31mred\r\n[bold]not markup[/] \u202eevil\x9b2J end"
CELL_OUTPUT = "\x1b]0;cell\x07\x1b[2Jcleared"
STEPS = [
    f"```repl\n# a raw escape in the code itself: \x1b[2J\nprint({CELL_OUTPUT!r})\n```",
    f"```repl\nglobals()['[/oops]'] = 1\nFINAL({ANSWER!r})\n```",
]
OBEYED = [b"\x1b]0;", b"\x07", b"\x1b[2J", b"\x1b[31mred", "\u202e".encode(), "\x9b".encode()]


def model(messages):
    return STEPS[min(root_step(messages), 1)] if is_root_call(messages) else "summary"


def rlm_args(server: ScriptedOpenAIServer, context: Path) -> list[str]:
    return ["run", "q", "-c", str(context), "--model", "openai/scripted", "--api-base", server.url]


def hostile_context(tmp_path: Path) -> Path:
    """A file whose very name is an escape sequence, as a downloaded file's may be."""
    path = tmp_path / "notes\x1b[2J.txt"
    path.write_text("some notes")
    return path


def run_on_terminal(args: list[str], state_dir: Path, seconds: float = 300) -> tuple[int, bytes]:
    """`rlm` with a pseudo-terminal as its stdout and stderr, as in a user's shell; all it wrote."""
    master, terminal = os.openpty()
    env = rlm_environment(state_dir, {"TERM": "xterm-256color", "COLUMNS": "200"})
    process = subprocess.Popen(
        [*RLM, *args], stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal, env=env
    )
    os.close(terminal)
    written = bytearray()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every end of the terminal is closed
                break
            if not chunk:
                break
            written += chunk
        return process.wait(timeout=10), bytes(written)
    finally:
        process.kill()
        os.close(master)


def test_a_terminal_is_shown_the_answer_and_cell_output_never_obeys_them(tmp_path):
    need_bwrap()
    with ScriptedOpenAIServer(model) as server:
        code, written = run_on_terminal(rlm_args(server, hostile_context(tmp_path)), tmp_path)
    assert code == 0, written.decode(errors="replace")
    assert [sequence for sequence in OBEYED if sequence in written] == []
    assert b"\\x1b]0;pwned\\x07\\x1b[31mred\\r" in written
    assert b"\\x1b]0;cell\\x07\\x1b[2Jcleared" in written
    assert b"[bold]not markup[/] \\u202eevil\\x9b2J end" in written


def test_a_redirected_answer_is_exact_and_status_shows_hostile_names_literally(tmp_path):
    need_bwrap()
    answer_file = tmp_path / "answer.txt"
    with ScriptedOpenAIServer(model) as server, open(answer_file, "wb") as out:
        done = subprocess.run(
            [*RLM, *rlm_args(server, hostile_context(tmp_path))],
            stdout=out,
            stderr=subprocess.PIPE,
            env=rlm_environment(tmp_path),
            timeout=300,
        )
    assert done.returncode == 0, done.stderr
    assert answer_file.read_bytes() == ANSWER.encode() + b"\n"
    assert [sequence for sequence in OBEYED if sequence in done.stderr] == []

    status = run_rlm(["status"], tmp_path)
    assert status.returncode == 0, status.stderr
    assert "[/oops]" in status.stdout
    assert "notes\\x1b[2J.txt" in status.stdout
    assert "\x1b" not in status.stdout
