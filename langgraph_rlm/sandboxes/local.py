"""The default sandbox: the worker under bubblewrap.

No network, a read-only view of the system, a private /tmp, a cleared environment, only the
files the user named, limits on memory, processes and CPU, a seccomp filter against new namespaces
and the kernel's wider reach, and the whole sandbox dies with the host.
Where a cgroup can be made (as root) the sandbox runs in its own; elsewhere only rlimits hold.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

from langgraph_rlm.sandboxes import cgroup, seccomp
from langgraph_rlm.sandboxes.base import SandboxSpec, SandboxUnavailable, bound_inside
from langgraph_rlm.sandboxes.process import CLOUDPICKLE_DIR, WORKER_FILES, ProcessSandbox, sandbox_environment

INSIDE = Path("/opt/rlm")
NOBODY = 65534
MEMORY_HEADROOM_MB = 256
NAMESPACES = ("--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives")
OTHER_SANDBOXES = "choose another sandbox: --sandbox docker, e2b, or process (no isolation)"
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap) "
    f"or {OTHER_SANDBOXES}"
)


def python_dirs() -> list[Path]:
    """Where the interpreter and its standard library live, when outside the system dirs."""
    dirs = {Path(sys.base_prefix).resolve(), Path(sys.executable).resolve().parent.parent}
    return sorted(d for d in dirs if not str(d).startswith(SYSTEM_DIRS))


def passable_parents(path: Path) -> list[str]:
    """The folders above a bind, made so the sandbox's user can pass them (bwrap makes new ones
    0700, and a bound folder may be 0700 outside)."""
    args: list[str] = []
    for parent in reversed(path.parents[:-1]):
        if str(parent) != "/tmp":
            args += ["--perms", "0755", "--dir", str(parent)]
    return args


def readable_mount(path: Path) -> list[str]:
    return [*passable_parents(path), "--ro-bind-try", str(path), str(path)]


class LocalSandbox(ProcessSandbox):
    """As root, bwrap keeps only the right to drop to nobody, which the worker does at once:
    the kernel ignores process limits for root."""

    kind = "local"
    isolated = True

    def __init__(self, spec: SandboxSpec) -> None:
        super().__init__(spec)
        self.cgroup: cgroup.SandboxCgroup | None = None

    def blob_paths(self) -> dict[str, str]:
        return bound_inside(self.spec)

    def process_limit(self) -> int:
        """A pids cgroup counts this sandbox's tasks alone; RLIMIT_NPROC would count the uid's, host-wide."""
        return 0 if self.cgroup is not None and "pids" in self.cgroup.dirs else self.spec.max_processes

    @classmethod
    def check_available(cls) -> None:
        if shutil.which("bwrap") is None:
            raise SandboxUnavailable(f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}")

    def command(self) -> list[str]:
        self.check_available()
        self.cgroup = cgroup.create(
            cgroup.Limits(
                memory_bytes=(self.spec.memory_mb + MEMORY_HEADROOM_MB) * 1024 * 1024,
                pids=self.spec.max_processes,
                cpus=self.spec.cpus,
            )
        )
        command = self.bwrap_command()
        return self.cgroup.wrap(command) if self.cgroup is not None else command

    def bwrap_command(self) -> list[str]:
        args = [
            shutil.which("bwrap") or "bwrap",
            *NAMESPACES,
            "--die-with-parent",
            "--new-session",
            "--clearenv",
            *self.seccomp_arguments(),
        ]
        if os.geteuid() == 0:
            args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            args += ["--unshare-user"]
        for key, value in sandbox_environment(str(INSIDE / "lib")).items():
            args += ["--setenv", key, value]
        for path in SYSTEM_DIRS + SYSTEM_FILES:
            args += ["--ro-bind-try", path, path]
        for path in python_dirs():
            args += readable_mount(path)
        args += ["--proc", "/proc", "--dev", "/dev"]
        args += ["--perms", "1777", "--size", str(self.spec.memory_mb * 1024 * 1024), "--tmpfs", "/tmp"]
        for path in WORKER_FILES:
            args += ["--ro-bind", str(path), str(INSIDE / path.name)]
        args += ["--ro-bind", str(CLOUDPICKLE_DIR), str(INSIDE / "lib" / "cloudpickle")]
        for path in self.spec.visible_files:
            args += readable_mount(path)
        for sha, path in self.spec.bound_blobs.items():
            inside = self.bound_blobs[sha]
            args += [*passable_parents(Path(inside)), "--ro-bind", str(path), inside]
        args += ["--chdir", "/tmp"]
        python = str(Path(sys.executable).resolve())
        worker = [python, "-s", str(INSIDE / "repl_worker.py"), *self.worker_arguments()]
        if os.geteuid() == 0:
            worker += ["--drop-to", str(NOBODY)]
        return [*args, *worker]

    def seccomp_arguments(self) -> list[str]:
        """bwrap reads the filter from a pipe the child inherits; a machine without a syscall
        table runs without one (the doctor says so)."""
        try:
            program = seccomp.program()
        except seccomp.Unsupported:
            return []
        read, write = os.pipe()
        with os.fdopen(write, "wb") as pipe:
            pipe.write(program)
        self.passed_fds.append(read)
        return ["--seccomp", str(read)]

    def environment(self) -> dict[str, str]:
        return {}

    async def describe_exit(self) -> str:
        if self.cgroup is not None and await asyncio.to_thread(self.cgroup.oom_killed):
            return "the worker was killed by the out-of-memory killer (the sandbox reached --memory-limit)"
        return await super().describe_exit()

    async def stop(self, keep: bool = True) -> None:
        await super().stop(keep)
        if self.cgroup is not None:
            await asyncio.to_thread(self.cgroup.remove)
            self.cgroup = None

    def unavailable_message(self, reason: str) -> str:
        if reason.startswith("bwrap"):
            return f"bubblewrap could not start the sandbox ({reason}): {bwrap_fix(reason)}"
        return super().unavailable_message(reason)


def bwrap_fix(said: str) -> str:
    """What to do about what bwrap said; it is installed, since it said something."""
    lowered = said.lower()
    if "can't find source path" in lowered:
        return (
            "a file the sandbox binds is missing; check that the context files and the state dir "
            "(--state-dir) still exist, then run again"
        )
    if any(sign in lowered for sign in ("namespace", "uid map", "operation not permitted")):
        return (
            "this machine does not let bubblewrap make the namespaces it needs (a container without "
            "them, kernel.unprivileged_userns_clone=0, or Ubuntu's "
            f"kernel.apparmor_restrict_unprivileged_userns=1): allow them, or {OTHER_SANDBOXES}"
        )
    return f"see `rlm doctor`, or {OTHER_SANDBOXES}"
