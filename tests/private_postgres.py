"""A PostgreSQL server of one test's own, so the test may restart it: the shared test server
stays up for every other test. Made with the installed server's binaries, run as `postgres`."""

from __future__ import annotations

import glob
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import unavailable


@dataclass
class PrivatePostgres:
    bin: Path
    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def ctl(self, *args: str, check: bool = True) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        command = [str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", f"{self.data}/log"]
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *command, "-w", *args], check=check, capture_output=True
        )

    def restart(self) -> None:
        """A fast restart: every session is ended, as an operator's restart ends them."""
        self.ctl("restart", "-m", "fast")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found or shutil.which("runuser") is None:
        unavailable("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin) or runuser here")
    folder = Path(tempfile.mkdtemp(prefix="rlm-pg-"))
    shutil.chown(folder, "postgres", "postgres")
    server = PrivatePostgres(Path(found[-1]).parent, folder / "data", free_port())
    initdb = [
        str(server.bin / "initdb"),
        "-D",
        str(server.data),
        "-A",
        "trust",
        "-U",
        "postgres",
        "--no-sync",
    ]
    try:
        subprocess.run(["runuser", "-u", "postgres", "--", *initdb], check=True, capture_output=True)
        server.ctl("start")
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"a private PostgreSQL did not start: {exc.stderr.decode(errors='replace')}")
    try:
        yield server
    finally:
        server.ctl("stop", "-m", "immediate", check=False)
        shutil.rmtree(folder, ignore_errors=True)
