"""A cgroup of its own for each `local` sandbox, where the host may make one (root, or a delegated tree).

RLIMIT_AS misses tmpfs, memfd and captured-output pages, and RLIMIT_NPROC counts every task of
the uid host-wide (every sandbox runs as nobody); a cgroup counts all the sandbox's memory and only
its own tasks, and adds a CPU quota. cgroup v2 is one tree; v1 (and the hybrid layout) has one per
controller, under which sandboxes nest inside the host's own cgroup so they stay within its limits.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shlex
import signal
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "pids", "cpu")
GROUP = "langgraph-rlm"
PERIOD_US = 100_000
REMOVE_SECONDS = 5.0
_names = itertools.count()


@dataclass(frozen=True)
class Limits:
    memory_bytes: int
    pids: int
    cpus: float

    def files(self, v2: bool) -> dict[str, list[tuple[str, str, bool]]]:
        """controller -> (file, value, required), in the order they must be written."""
        quota = str(max(1000, int(self.cpus * PERIOD_US)))
        memory = str(self.memory_bytes)
        if v2:
            return {
                "memory": [("memory.max", memory, True), ("memory.swap.max", "0", False)],
                "pids": [("pids.max", str(self.pids), True)],
                "cpu": [("cpu.max", f"{quota} {PERIOD_US}", True)],
            }
        return {
            "memory": [
                ("memory.limit_in_bytes", memory, True),
                ("memory.memsw.limit_in_bytes", memory, False),
            ],
            "pids": [("pids.max", str(self.pids), True)],
            "cpu": [("cpu.cfs_period_us", str(PERIOD_US), True), ("cpu.cfs_quota_us", quota, True)],
        }


@dataclass
class SandboxCgroup:
    """The sandbox's folder in each hierarchy that limits it (one folder for all on v2)."""

    dirs: dict[str, Path]

    @property
    def enforced(self) -> tuple[str, ...]:
        return tuple(c for c in CONTROLLERS if c in self.dirs)

    def folders(self) -> list[Path]:
        return sorted(set(self.dirs.values()))

    def wrap(self, command: list[str]) -> list[str]:
        """The command, joining the cgroup before it starts: nothing it runs is ever outside."""
        joins = " && ".join(f"echo $$ > {shlex.quote(str(d / 'cgroup.procs'))}" for d in self.folders())
        return ["/bin/sh", "-c", f'{joins} && exec "$@"', "rlm-sandbox", *command]

    def oom_killed(self) -> bool:
        folder = self.dirs.get("memory")
        for name in ("memory.events", "memory.oom_control"):
            with contextlib.suppress(OSError, ValueError):
                for line in (folder / name).read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and int(value) > 0:
                        return True
        return False

    def remove(self) -> None:
        """Kills what is left inside (nothing, normally) and removes the folders."""
        deadline = time.monotonic() + REMOVE_SECONDS
        for folder in self.folders():
            while folder.exists() and time.monotonic() < deadline:
                kill_all(folder)
                with contextlib.suppress(OSError):
                    folder.rmdir()
                    break
                time.sleep(0.02)


def create(limits: Limits, root: Path = ROOT) -> SandboxCgroup | None:
    """A new cgroup with `limits`; None where none can be made (the caller falls back to rlimits)."""
    v2 = (root / "cgroup.controllers").exists()
    files = limits.files(v2)
    name = f"{os.getpid()}-{next(_names)}"
    dirs: dict[str, Path] = {}
    for controller, base in hierarchies(root, v2).items():
        folder = base / name
        try:
            prepare(base, controller, v2)
            folder.mkdir(exist_ok=True)
            for file, value, required in files[controller]:
                write(folder / file, value, required)
        except OSError:
            if folder not in dirs.values():
                with contextlib.suppress(OSError):
                    folder.rmdir()
            continue
        dirs[controller] = folder
    return SandboxCgroup(dirs) if dirs else None


def hierarchies(root: Path, v2: bool) -> dict[str, Path]:
    """controller -> the folder sandbox cgroups go in."""
    if v2:
        return {c: root / GROUP for c in CONTROLLERS}
    own = own_cgroups()
    found = {}
    for controller in CONTROLLERS:
        mount = root / controller
        if not (mount / "cgroup.procs").exists():
            continue
        parent = mount / own.get(controller, "/").strip("/")
        found[controller] = (parent if parent.is_dir() else mount) / GROUP
    return found


def own_cgroups() -> dict[str, str]:
    """controller -> this process's cgroup path, from /proc/self/cgroup (v1 lines only)."""
    paths = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(","):
                if controller:
                    paths[controller] = path
    return paths


def prepare(base: Path, controller: str, v2: bool) -> None:
    """The shared folder exists (v2: with the controller handed down to it) and holds no stale ones."""
    if v2:
        with contextlib.suppress(OSError):
            (base.parent / "cgroup.subtree_control").write_text(f"+{controller}")
    base.mkdir(exist_ok=True)
    if v2:
        (base / "cgroup.subtree_control").write_text(f"+{controller}")
    remove_stale(base)


def remove_stale(base: Path) -> None:
    """Empty cgroups left by a host process that was killed; a live one's are not empty, or are its."""
    for folder in base.iterdir():
        owner = folder.name.partition("-")[0]
        if folder.is_dir() and owner.isdigit() and not Path(f"/proc/{owner}").exists():
            with contextlib.suppress(OSError):
                folder.rmdir()


def write(path: Path, value: str, required: bool) -> None:
    try:
        path.write_text(value)
    except OSError:
        if required:
            raise


def kill_all(folder: Path) -> None:
    with contextlib.suppress(OSError):
        for pid in (folder / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):
                os.kill(int(pid), signal.SIGKILL)


def probe() -> tuple[str, ...]:
    """Which controllers a sandbox cgroup gets here, by making one and removing it."""
    made = create(Limits(memory_bytes=1 << 30, pids=64, cpus=1.0))
    if made is None:
        return ()
    made.remove()
    return made.enforced
