from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from langgraph_rlm.persistence.blobs import FileBlobStore
from langgraph_rlm.sandboxes import make_sandbox
from langgraph_rlm.sandboxes.base import SandboxSpec
from langgraph_rlm.sandboxes.file_gate import FileGate
from langgraph_rlm.sandboxes.session import ReplSession
from tests.debian_image import build_debian_image

RLM = [sys.executable, "-m", "langgraph_rlm"]
IN_CI = os.environ.get("CI") == "true"


def bwrap_works() -> bool:
    if shutil.which("bwrap") is None:
        return False
    probe = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-net", "true"], capture_output=True)
    return probe.returncode == 0


def need_bwrap() -> None:
    if not bwrap_works():
        unavailable("bubblewrap is not usable on this machine")


TEST_IMAGE = "rlm-test-python3:bookworm"
BACKENDS = ("local", "process", "docker", "e2b")
ISOLATED_BACKENDS = ("local", "docker", "e2b")


def unavailable(reason: str) -> None:
    """Skips on a laptop without the backend; in CI every backend must run."""
    if IN_CI:
        pytest.fail(f"{reason} (CI must provide it: see .ci/run)")
    pytest.skip(reason)


def need_docker() -> None:
    from langgraph_rlm.sandboxes.base import SandboxUnavailable
    from langgraph_rlm.sandboxes.docker import docker_client

    try:
        client = docker_client()
    except SandboxUnavailable as exc:
        unavailable(str(exc))
    ensure_test_image(client)


def ensure_test_image(client) -> None:
    """A base image with python3 from Debian packages, built once and cached by tag (no registry here)."""
    import docker

    try:
        client.images.get(TEST_IMAGE)
        return
    except docker.errors.ImageNotFound:
        pass
    if shutil.which("debootstrap") is None or os.geteuid() != 0:
        unavailable(
            f"the test image {TEST_IMAGE} is missing and cannot be built here (needs root and debootstrap)"
        )
    build_debian_image(TEST_IMAGE)


_e2b_stand_in = []


def need_e2b():
    """The real E2B SDK in debug mode, pointed at tests/e2b_server.py for the whole test run."""
    if not _e2b_stand_in:
        from tests.e2b_server import E2BStandIn

        server = E2BStandIn().__enter__()
        _e2b_stand_in.append(server)
        os.environ["E2B_DEBUG"] = "true"
        os.environ["E2B_SANDBOX_URL"] = server.url
        os.environ["E2B_API_URL"] = server.url
    return _e2b_stand_in[0]


def pytest_sessionfinish(session, exitstatus) -> None:
    """The E2B stand-in lives for the whole run; its kernel and folder go with it."""
    while _e2b_stand_in:
        _e2b_stand_in.pop().__exit__(None, None, None)


def need_backend(kind: str) -> None:
    if kind == "local":
        need_bwrap()
    elif kind == "docker":
        need_docker()
    elif kind == "e2b":
        need_e2b()


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    need_backend(request.param)
    return request.param


@pytest.fixture(params=ISOLATED_BACKENDS)
def isolated_backend(request) -> str:
    need_backend(request.param)
    return request.param


class NoSubCalls:
    async def llm_query(self, prompt: str, model: str | None) -> str:
        raise RuntimeError("no sub-model in this test")

    async def rlm_query(self, prompt: str, context_sha: str | None) -> str:
        raise RuntimeError("no sub-model in this test")


@pytest.fixture
def blobs(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


@pytest.fixture
async def open_session(blobs: FileBlobStore) -> AsyncIterator[Callable[..., Awaitable[ReplSession]]]:
    """Starts live REPL sessions on real sandboxes (`local` by default); all closed after the test."""
    sessions: list[ReplSession] = []

    async def start(
        kind: str = "local", files: tuple[Path, ...] = (), folders: tuple[Path, ...] = (), **spec: Any
    ) -> ReplSession:
        need_backend(kind)
        workdir = _e2b_stand_in[0].workdir() if kind == "e2b" else ""
        sandbox_spec = SandboxSpec(
            visible_files=tuple(files), docker_image=TEST_IMAGE, e2b_workdir=workdir, **spec
        )
        session = ReplSession(lambda: make_sandbox(kind, sandbox_spec), blobs, FileGate(files, folders))
        await session.ensure(None)
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        await session.close()


def context_of(blobs: FileBlobStore, text: str, name: str = "context_0", source: str | None = None) -> dict:
    sha = blobs.put(text.encode())
    return {"name": name, "label": Path(source).name if source else name, "source": source, "sha": sha}


def rlm_environment(state_dir: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    return {
        **os.environ,
        "RLM_STATE_DIR": str(state_dir),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        **(env or {}),
    }


def start_rlm(
    args: list[str],
    state_dir: Path,
    env: dict[str, str] | None = None,
    new_session: bool = False,
    stdin: int = subprocess.DEVNULL,
) -> subprocess.Popen:
    """The real `rlm` command, started in a subprocess with the tests' state dir; `new_session`
    gives it a process group of its own, as a shell gives a foreground command (Ctrl-C: `killpg`).
    stdin is /dev/null: `rlm run` reads a pipe left open as its context, waiting for its end."""
    return subprocess.Popen(
        [*RLM, *args],
        env=rlm_environment(state_dir, env),
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=new_session,
    )


def run_rlm(
    args: list[str], state_dir: Path, env: dict[str, str] | None = None, input: str | None = None, timeout=300
) -> subprocess.CompletedProcess:
    """`rlm` run to its end; `.pid` names the process (its containers carry it in a label)."""
    with start_rlm(args, state_dir, env, stdin=subprocess.PIPE) as process:
        try:
            stdout, stderr = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    done.pid = process.pid
    return done


def containers_of(pid: int) -> list:
    """The sandbox containers the host process `pid` of this machine started, whatever else runs."""
    import docker

    from langgraph_rlm.sandboxes.docker import LABEL

    owner = f"{LABEL}.host={socket.gethostname()}:{pid}"
    return docker.from_env().api.containers(all=True, filters={"label": owner})


POSTGRES_ADMIN = os.environ.get("RLM_TEST_POSTGRES", "postgresql://postgres:rlm@127.0.0.1:5432/postgres")


@dataclass
class Database:
    """Where a test keeps threads and blobs: the state dir's SQLite and files, or PostgreSQL."""

    kind: str
    url: str | None = None

    @property
    def flags(self) -> list[str]:
        return ["--db", self.url] if self.url else []

    def blob_shas(self, state_dir: Path) -> set[str]:
        if self.url is None:
            return {p.parent.name + p.name for p in (state_dir / "blobs").glob("??/*")}
        import psycopg

        with psycopg.connect(self.url) as conn:
            return {row[0] for row in conn.execute("SELECT sha FROM rlm_blobs")}


def postgres_or_skip() -> None:
    import psycopg

    try:
        psycopg.connect(POSTGRES_ADMIN, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL must be running in CI (.ci/run starts it): {exc}")
        pytest.skip("no PostgreSQL server for the tests (set RLM_TEST_POSTGRES)")


@pytest.fixture(params=["sqlite", "postgres"])
def database(request) -> Iterator[Database]:
    """Each persistence test runs on both stores; PostgreSQL gets a fresh database per test."""
    if request.param == "sqlite":
        yield Database("sqlite")
        return
    postgres_or_skip()
    import psycopg

    name = f"rlm_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = POSTGRES_ADMIN.rsplit("/", 1)[0] + "/" + name
    yield Database("postgres", url)
    try:
        with psycopg.connect(url) as conn:
            used = conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0] > 0
    except psycopg.errors.UndefinedTable:
        used = False
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    assert used, "a [postgres] test must keep its checkpoints in PostgreSQL (pass database.flags / .url)"


async def checkpoint_before_step(graph, config, step: int):
    """The checkpoint of `config`'s thread at which `step` steps are done and the next is due."""
    async for snapshot in graph.aget_state_history(config):
        if snapshot.next == ("generate_code",) and snapshot.values.get("iteration") == step:
            return snapshot
    raise AssertionError(f"no checkpoint after step {step}")


@pytest.fixture
def user(tmp_path: Path):
    """A newcomer: the installed `rlm` from a fresh directory with default settings (tests/user.py)."""
    from tests.user import new_user

    return new_user(tmp_path)


@pytest.fixture(scope="session")
def readme_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `bin` folder of the virtual environment the README's install lines make, run as
    written in a copy of the checkout: the install a newcomer has, with no extras."""
    from tests.readme import install_as_written

    return install_as_written(tmp_path_factory.mktemp("readme-install"))
