"""A command run as a whole process: its wall time, the CPU time it and its waited-for
descendants used (steadier than wall time on a busy machine), and the peak of the resident memory
its process tree holds on the host (sampled; a sandbox's workers count, a container's do not)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SAMPLE_SECONDS = 0.05


@dataclass
class Measured:
    seconds: float
    peak_rss: int
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    cpu_seconds: float = 0.0


def tree_rss(pid: int) -> int:
    """Resident bytes of `pid` and its descendants (0 for those gone meanwhile)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            rss = next(line for line in status.splitlines() if line.startswith("VmRSS"))
            total += int(rss.split()[1]) * 1024
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, StopIteration):
            continue
    return total


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_measured(command: list[str], timeout: float, env: dict[str, str] | None = None) -> Measured:
    cpu_before = children_cpu()
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    peak, timed_out = 0, False
    while process.poll() is None:
        peak = max(peak, tree_rss(process.pid))
        if time.perf_counter() - started > timeout:
            timed_out = True
            os.killpg(process.pid, signal.SIGTERM)
            break
        time.sleep(SAMPLE_SECONDS)
    try:
        stdout, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
    seconds = time.perf_counter() - started
    cpu = children_cpu() - cpu_before
    return Measured(seconds, peak, process.returncode, stdout, stderr, timed_out, cpu)
