"""Ctrl-C or SIGTERM during a running cell stops `rlm run` at once, cleanly, with the thread kept."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from langgraph_rlm.sandboxes import cgroup
from tests.conftest import TEST_IMAGE, containers_of, need_backend, run_rlm, start_rlm
from tests.openai_server import ScriptedOpenAIServer, is_root_call, root_step

STOP_SECONDS = 15
STEPS = [
    "```repl\nkept = 'still here'\n```",
    "```repl\nimport time\nllm_query('cell started')\n"
    "while open({flag!r}).read() == 'wait':\n    time.sleep(0.1)\n```",
    "```repl\nFINAL(kept)\n```",
]


def process_stat(pid: int) -> tuple[str, int, str] | None:
    """(state, parent, start time) of a live process; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return fields[0], int(fields[1]), fields[19]


def descendants(root: int) -> dict[int, str]:
    """Every process under `root`, with its start time (a pid may be reused once it is gone)."""
    stats = {int(p): process_stat(int(p)) for p in os.listdir("/proc") if p.isdigit()}
    found: dict[int, str] = {}
    frontier = {root}
    while frontier:
        frontier = {pid for pid, st in stats.items() if st and st[1] in frontier and pid not in found}
        found.update({pid: stats[pid][2] for pid in frontier})
    return found


def still_running(processes: dict[int, str]) -> list[int]:
    return [
        pid
        for pid, started in processes.items()
        if (st := process_stat(pid)) is not None and st[2] == started and st[0] not in "ZX"
    ]


def cgroups_of(pid: int) -> list[Path]:
    v2 = (cgroup.ROOT / "cgroup.controllers").exists()
    bases = {base for base in cgroup.hierarchies(cgroup.ROOT, v2).values() if base.is_dir()}
    return [folder for base in bases for folder in base.glob(f"{pid}-*")]


@pytest.mark.parametrize(
    ("how", "code", "said"),
    [("ctrl-c", 130, "interrupted"), ("sigterm", 143, "terminated")],
    ids=["ctrl-c", "sigterm"],
)
@pytest.mark.parametrize("kind", ["local", "docker"])
def test_a_signal_stops_the_running_cell_cleans_up_and_keeps_the_thread(kind, how, code, said, tmp_path):
    need_backend(kind)
    flag = tmp_path / "flag.txt"
    flag.write_text("wait")
    cell_running = threading.Event()

    def model(messages):
        if not is_root_call(messages):
            cell_running.set()
            return "ok"
        return STEPS[min(root_step(messages), 2)].format(flag=str(flag))

    with ScriptedOpenAIServer(model) as server:
        args = ["run", "the question", "-c", str(flag), "--thread", "s", "--sandbox", kind]
        args += ["--docker-image", TEST_IMAGE, "--model", "openai/scripted", "--api-base", server.url]
        victim = start_rlm(args, tmp_path / "state", new_session=True)
        try:
            assert cell_running.wait(120), "the cell never started"
            started = descendants(victim.pid)
            if how == "ctrl-c":
                os.killpg(victim.pid, signal.SIGINT)
                time.sleep(0.5)
                os.killpg(victim.pid, signal.SIGINT)  # pressed twice: the cleanup still runs
            else:
                victim.send_signal(signal.SIGTERM)
            _, stderr = victim.communicate(timeout=STOP_SECONDS)
        finally:
            victim.kill()
        assert victim.returncode == code, stderr
        assert stderr.strip().splitlines()[-1] == f"{said}; the thread is saved up to its last step"
        assert "Traceback" not in stderr
        assert still_running(started) == []
        assert cgroups_of(victim.pid) == []
        if kind == "docker":
            assert containers_of(victim.pid) == []

        status = run_rlm(["status", "--thread", "s"], tmp_path / "state")
        assert status.returncode == 0, status.stderr
        assert "kept" in status.stdout
        flag.write_text("go")
        again = run_rlm(args, tmp_path / "state")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "still here"
    assert "resuming the unfinished question" in again.stderr
