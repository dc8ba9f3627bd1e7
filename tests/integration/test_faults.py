"""The fault matrix (issue 21): whatever stops a run, the thread afterwards either resumes (the same
question asked again finishes it, with the right answer) or the run said in one line what
happened, and nothing that was checkpointed is lost: the earlier turn's answer and the REPL's
variables are still there, for `rlm status` and for a follow-up question whose code reads them.

Every row asks the same three questions on one thread. The second one takes every node: a cell
with a sub-call, a second cell, a summary of its older steps mid-question (the window is made
small), a FINAL cell and the turn's summary. The scripted model holds the one request a row names,
so the test knows where the `rlm` process is when the fault strikes."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_IMAGE, Database, containers_of, need_backend, need_bwrap
from tests.openai_server import Dropped, ScriptedOpenAIServer, is_root_call, last_question
from tests.private_postgres import private_postgres
from tests.user import User

FIRST, SECOND, THIRD = "first question", "second question", "third question"
FLAGS = ["--context-window", "500"]
"""Small enough that the second question's two steps are summarised before its third."""
STEP_A = "```repl\npart = kept + 1\nslow = llm_query('hold')\nprint('step-a', 'done')\n```"
STEP_B = "```repl\nprint('step-b', 'done', part, slow)\n```"
ANSWERS = {FIRST: "first answer", SECOND: "42 held", THIRD: "83 first answer"}
WAIT = 60.0
KILLS_IN_WRITES = 3
WAL_HEADER, FRAME_HEADER = 32, 24

Messages = list[dict[str, Any]]


def outputs(messages: Messages) -> str:
    """What the REPL printed, as the model was shown it (not the model's own code)."""
    return "\n".join(str(m["content"]) for m in messages if m["role"] == "user")


def stage(messages: Messages) -> str:
    seen = outputs(messages)
    return "final" if "step-b done" in seen else "b" if "step-a done" in seen else "a"


def reply(messages: Messages) -> str:
    if not is_root_call(messages):
        return "held" if messages[-1]["content"] == "hold" else "summary"
    question = last_question(messages)
    if question == FIRST:
        return "```repl\nkept = 41\nFINAL('first answer')\n```"
    if question == THIRD:
        return "```repl\nFINAL(f\"{part + kept} {history[0]['answer']}\")\n```"
    return {"a": STEP_A, "b": STEP_B, "final": "```repl\nFINAL(f'{part} {slow}')\n```"}[stage(messages)]


def root_call_at(step: str) -> Callable[[Messages], bool]:
    return lambda m: is_root_call(m) and last_question(m) == SECOND and stage(m) == step


def summary_of(prompt_start: str) -> Callable[[Messages], bool]:
    return lambda m: not is_root_call(m) and str(m[-1]["content"]).startswith(prompt_start)


BOUNDARIES = {
    "start_turn": root_call_at("a"),
    "generate_code": lambda m: not is_root_call(m) and m[-1]["content"] == "hold",
    "execute": root_call_at("b"),
    "check_final": summary_of("You are condensing"),
    "compact_memory": root_call_at("final"),
    "answer_shown": lambda m: summary_of("Summarise the work")(m) and SECOND in str(m[-1]["content"]),
}
"""Where each row's `rlm` is held: just past the named node, waiting on the next node's model
call (after generate_code: on the sub-call of the cell that execute runs). The last,
"answer_shown", is inside compact_memory at the end of the question: the answer is on stdout,
the turn's summary not yet stored."""


class Script:
    """The scripted model. The first request `hold` matches waits until released, so a test knows
    its `rlm` process is there; while `dropping` is set, a request `drop` matches gets half a
    reply and a closed connection. `first_cell` replaces the second question's first cell's
    code; `padding` characters of prose come with each of that question's steps."""

    def __init__(
        self,
        hold: Callable[[Messages], bool] = lambda m: False,
        drop: Callable[[Messages], bool] = lambda m: False,
        first_cell: str = "",
        padding: int = 0,
    ) -> None:
        self.hold, self.drop, self.first_cell, self.padding = hold, drop, first_cell, padding
        self.arrived = threading.Event()
        self.released = threading.Event()
        self.dropping = threading.Event()
        self.dropped = 0
        self.padded = threading.Event()

    @contextmanager
    def serving(self) -> Iterator[ScriptedOpenAIServer]:
        """The server; a request still held when the test ends is let go, its client long dead."""
        try:
            with ScriptedOpenAIServer(self) as server:
                yield server
        finally:
            self.released.set()

    def __call__(self, messages: Messages) -> str:
        if not self.arrived.is_set() and self.hold(messages):
            self.arrived.set()
            self.released.wait(WAIT)
        if self.dropping.is_set() and self.drop(messages):
            self.dropped += 1
            raise Dropped()
        text = reply(messages)
        if is_root_call(messages) and last_question(messages) == SECOND:
            if self.first_cell and text == STEP_A:
                text = text.replace("part = kept + 1", f"{self.first_cell}\npart = kept + 1")
            if self.padding:
                text = "I will think this through. " * (self.padding // 27) + "\n" + text
                self.padded.set()
        return text


class Running:
    """An `rlm` process whose output is read as it comes, so it never blocks on a full pipe."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.output: list[bytes] = []
        self.reader = threading.Thread(target=lambda: self.output.extend(process.communicate()))
        self.reader.start()

    def wait_until(self, event: threading.Event) -> None:
        deadline = time.monotonic() + WAIT
        while not event.wait(0.05):
            assert self.process.poll() is None, f"rlm ended first: {self.stderr()}"
            assert time.monotonic() < deadline, "rlm never got there"

    def kill(self) -> None:
        self.process.kill()
        self.reader.join(WAIT)

    def stdout(self) -> str:
        return self.output[0].decode() if self.output else ""

    def stderr(self) -> str:
        self.reader.join(0)
        return self.output[1].decode() if len(self.output) > 1 else ""


def ask(user: User, question: str, flags: list[str]) -> subprocess.CompletedProcess:
    return user.run(["run", question, *FLAGS, *flags])


def answered(done: subprocess.CompletedProcess, question: str) -> None:
    assert (done.returncode, done.stdout.strip()) == (0, ANSWERS[question]), done.stderr


def one_line_failure(done: subprocess.CompletedProcess) -> str:
    """A run that could not go on says what happened in one line, and does not claim success.
    Returns that line."""
    assert done.returncode != 0 and done.stdout == "", done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and done.stderr.strip().endswith(errors[0]), done.stderr
    return errors[0]


def nothing_lost(user: User, flags: list[str]) -> None:
    """The second question was answered: the thread shows its variables and its question, and a
    follow-up reads a variable of each earlier turn and the first turn's answer. `flags` name
    the store only."""
    status = user.run(["status", *flags])
    assert status.returncode == 0, status.stderr
    variables = status.stdout.split("REPL variables", 1)[1]
    assert all(f" {name} " in variables for name in ("kept", "part", "slow")), status.stdout
    assert f"last question: {SECOND}" in status.stdout
    answered(ask(user, THIRD, flags), THIRD)


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_a_run_killed_at_a_node_boundary_resumes(user, database, boundary):
    need_bwrap()
    script = Script(BOUNDARIES[boundary])
    with script.serving() as server:
        user.use_model(server.url)
        answered(ask(user, FIRST, database.flags), FIRST)
        victim = Running(user.start(["run", SECOND, *FLAGS, *database.flags]))
        victim.wait_until(script.arrived)
        victim.kill()
        if boundary == "answer_shown":
            assert victim.stdout().strip() == ANSWERS[SECOND]
        again = ask(user, SECOND, database.flags)
        answered(again, SECOND)
        assert "resuming the unfinished question" in again.stderr, again.stderr
        nothing_lost(user, database.flags)


def wal_uncommitted(wal: Path) -> bool:
    """Whether SQLite's write-ahead log ends in frames of a transaction not yet committed: a
    checkpoint is being written (see sqlite.org/fileformat.html, the WAL file format)."""
    try:
        data = wal.read_bytes()
    except FileNotFoundError:
        return False
    if len(data) < WAL_HEADER:
        return False
    page, salts = int.from_bytes(data[8:12], "big"), data[16:24]
    uncommitted, at = False, WAL_HEADER
    while at + FRAME_HEADER + page <= len(data) and data[at + 8 : at + 16] == salts:
        uncommitted = int.from_bytes(data[at + 4 : at + 8], "big") == 0
        at += FRAME_HEADER + page
    return uncommitted


def writing(database: Database, state_dir: Path) -> Callable[[], bool]:
    """Whether the thread's store is in the middle of a write: SQLite's log ends in uncommitted
    frames, or PostgreSQL has a transaction open in the thread's database."""
    if database.url is None:
        return lambda: wal_uncommitted(state_dir / "threads.sqlite-wal")
    import psycopg

    watcher = psycopg.connect(database.url, autocommit=True)
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
    )
    return lambda: watcher.execute(query).fetchone()[0] > 0


def stopped(pid: int) -> bool:
    tasks = Path(f"/proc/{pid}/task").glob("*/stat")
    return all(stat.read_text().rsplit(")", 1)[1].split()[0] in "tT" for stat in tasks)


def kill_in_a_write(victim: Running, in_a_write: Callable[[], bool], rng: random.Random) -> bool:
    """Stops the process at random moments until one finds it in the middle of a write, and
    kills it there; False if its run ended (or the time ran out) first."""
    pid, deadline = victim.process.pid, time.monotonic() + WAIT
    while victim.process.poll() is None and time.monotonic() < deadline:
        time.sleep(rng.uniform(0, 0.001))
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
            while not stopped(pid):
                time.sleep(0.0005)
            if in_a_write():
                victim.kill()
                return True
            os.kill(pid, signal.SIGCONT)
    victim.kill()
    return False


def test_a_run_killed_while_it_writes_a_checkpoint_resumes(user, database):
    """SIGKILL lands in the middle of a checkpoint's write (a megabyte of the model's prose in
    each step makes them long), several times over the same question; after each, the same
    question goes on: resumed, or asked afresh when the kill undid its first write."""
    need_bwrap()
    script = Script(padding=1 << 20)
    rng = random.Random(21)
    with script.serving() as server:
        user.use_model(server.url)
        answered(ask(user, FIRST, database.flags), FIRST)
        in_a_write = writing(database, user.cwd / ".rlm")
        landed = 0
        for _ in range(3 * KILLS_IN_WRITES):
            script.padded.clear()
            victim = Running(user.start(["run", SECOND, *FLAGS, *database.flags]))
            victim.wait_until(script.padded)
            landed += kill_in_a_write(victim, in_a_write, rng)
            assert "Traceback" not in victim.stderr() and "error:" not in victim.stderr(), victim.stderr()
            if landed == KILLS_IN_WRITES:
                break
        assert landed == KILLS_IN_WRITES, f"only {landed} kill(s) found a write in progress"
        answered(ask(user, SECOND, database.flags), SECOND)
        nothing_lost(user, database.flags)


def test_postgres_restarting_during_a_run_costs_at_most_one_line(user):
    """The server restarts while the model thinks: the run goes on, or ends in one line and the
    same question resumes once the server is back."""
    need_bwrap()
    script = Script(hold=root_call_at("b"))
    with private_postgres() as postgres, script.serving() as server:
        user.use_model(server.url)
        store = ["--db", postgres.url]
        answered(ask(user, FIRST, store), FIRST)
        victim = Running(user.start(["run", SECOND, *FLAGS, *store]))
        victim.wait_until(script.arrived)
        postgres.restart()
        script.released.set()
        victim.reader.join(WAIT)
        done = subprocess.CompletedProcess(
            victim.process.args, victim.process.returncode, victim.stdout(), victim.stderr()
        )
        assert "psycopg" not in done.stderr, done.stderr
        if done.returncode != 0:
            one_line_failure(done)
            again = ask(user, SECOND, store)
            answered(again, SECOND)
            assert "resuming the unfinished question" in again.stderr, again.stderr
        else:
            answered(done, SECOND)
        nothing_lost(user, store)


@contextmanager
def small_disk(folder: Path, size: str) -> Iterator[Path]:
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def test_a_full_disk_costs_one_line_and_the_question_resumes_once_there_is_room(user):
    """The state dir's disk fills up mid-question: other files leave 2 MiB free, and a cell makes a
    5 MiB value, whose snapshot cannot be stored. Once those files are deleted, there is room for
    it, as long as the failed write left nothing behind."""
    need_bwrap()
    if os.geteuid() != 0:
        pytest.skip("mounting a small disk needs root")
    script = Script(first_cell="scratch = bytes(5 << 20)")
    with script.serving() as server, small_disk(user.cwd / "disk", "6m") as disk:
        user.use_model(server.url)
        store = ["--state-dir", str(disk / "state")]
        answered(ask(user, FIRST, store), FIRST)
        other = disk / "other files"
        room = os.statvfs(disk)
        other.write_bytes(bytes(room.f_bavail * room.f_frsize - (2 << 20)))
        said = one_line_failure(ask(user, SECOND, store))
        assert "full" in said or "space" in said, said
        other.unlink()
        again = ask(user, SECOND, store)
        answered(again, SECOND)
        assert "resuming the unfinished question" in again.stderr, again.stderr
        nothing_lost(user, store)


def test_a_reply_cut_off_mid_way_is_retried_then_said_in_one_line_and_the_question_resumes(user):
    need_bwrap()
    script = Script(drop=root_call_at("b"))
    with script.serving() as server:
        user.use_model(server.url)
        answered(ask(user, FIRST, []), FIRST)
        script.dropping.set()
        cut = ask(user, SECOND, [])
        one_line_failure(cut)
        assert script.dropped == 3, "a reply cut off is asked for again, twice by default"
        script.dropping.clear()
        again = ask(user, SECOND, [])
        answered(again, SECOND)
        assert "resuming the unfinished question" in again.stderr, again.stderr
        nothing_lost(user, [])


def sandbox_processes(pid: int) -> dict[int, bytes]:
    """The descendants of process `pid` that run a REPL worker (bwrap's, and the worker itself),
    each with its program."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            children.setdefault(int(stat.read_text().rsplit(")", 1)[1].split()[1]), []).append(
                int(stat.parent.name)
            )
    found, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            todo.append(child)
            with contextlib.suppress(OSError):
                argv = (Path("/proc") / str(child) / "cmdline").read_bytes().split(b"\0")
                if any(arg.endswith(b"repl_worker.py") for arg in argv):
                    found[child] = argv[0]
    return found


def kill_sandbox(sandbox: str, host: int) -> None:
    """Kills the sandbox of `rlm` process `host` from outside, and waits until it is gone."""
    if sandbox == "docker":
        (container,) = containers_of(host)
        subprocess.run(["docker", "kill", container["Id"]], check=True, capture_output=True)
        subprocess.run(["docker", "wait", container["Id"]], capture_output=True, timeout=WAIT)
        return
    (worker,) = [pid for pid, program in sandbox_processes(host).items() if not program.endswith(b"bwrap")]
    os.kill(worker, signal.SIGKILL)
    deadline = time.monotonic() + WAIT
    while sandbox_processes(host):
        assert time.monotonic() < deadline, "the sandbox outlived its worker"
        time.sleep(0.05)


@pytest.mark.parametrize("sandbox", ["local", "docker"])
def test_a_sandbox_killed_between_cells_is_restored_for_the_next_one(user, sandbox):
    """The question answers and nothing is lost. Whether the next cell finds the worker replaced
    or replaces it itself depends on whether the host has read the worker's end yet."""
    need_backend(sandbox)
    script = Script(hold=root_call_at("b"))
    flags = ["--sandbox", sandbox, "--docker-image", TEST_IMAGE]
    with script.serving() as server:
        user.use_model(server.url)
        answered(ask(user, FIRST, flags), FIRST)
        victim = Running(user.start(["run", SECOND, *FLAGS, *flags]))
        victim.wait_until(script.arrived)
        kill_sandbox(sandbox, victim.process.pid)
        script.released.set()
        victim.reader.join(WAIT)
        assert victim.process.returncode == 0, victim.stderr()
        assert victim.stdout().strip() == ANSWERS[SECOND]
        nothing_lost(user, flags[:0])
