"""The cgroup v2 layout (laptops), on a stand-in tree: this machine's CI has cgroup v1."""

from __future__ import annotations

import subprocess

from langgraph_rlm.sandboxes import cgroup


def test_v2_sandbox_cgroup_gets_every_limit_and_joins_before_the_command(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    made = cgroup.create(cgroup.Limits(memory_bytes=768 << 20, pids=32, cpus=0.5), root=tmp_path)
    assert made is not None and made.enforced == ("memory", "pids", "cpu")
    folder = made.dirs["memory"]
    assert folder.parent == tmp_path / cgroup.GROUP
    assert (folder / "memory.max").read_text() == str(768 << 20)
    assert (folder / "memory.swap.max").read_text() == "0"
    assert (folder / "pids.max").read_text() == "32"
    assert (folder / "cpu.max").read_text() == "50000 100000"
    command = made.wrap(["sh", "-c", "echo started"])
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    assert done.stdout == "started\n"
    joined = (folder / "cgroup.procs").read_text().strip()
    assert joined.isdigit()


def test_no_cgroup_where_none_can_be_made(tmp_path):
    assert cgroup.create(cgroup.Limits(memory_bytes=1 << 30, pids=8, cpus=1.0), root=tmp_path) is None
