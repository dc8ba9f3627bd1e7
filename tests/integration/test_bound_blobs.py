"""A file context the store keeps as a file is bound read-only into the sandbox as it starts: the
worker maps it instead of receiving a copy over the channel, sees exactly the file's text, and
cannot change what the host stores."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from langgraph_rlm import RLMSettings
from langgraph_rlm.graph.resources import Resources
from langgraph_rlm.graph.state import ContextRef
from langgraph_rlm.persistence.answers import open_answer_store
from langgraph_rlm.persistence.blobs import FileBlobStore, OpenBlob
from langgraph_rlm.sandboxes.pool import SandboxPool
from langgraph_rlm.sandboxes.session import CellResult, ReplSession
from tests.conftest import TEST_IMAGE, NoSubCalls, context_of, need_backend

TEXT = "naïve café ☃ 𝄞 straße\n" * 50_000 + "end\n"
SHOW = (
    "import hashlib\nprint(hashlib.sha256({name}.encode('utf-8', 'surrogatepass')).hexdigest(), len({name}))"
)


class SentBlobs(FileBlobStore):
    """A real store that notes each blob the host opens to send down the channel."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.sent: list[str] = []

    def open(self, sha: str) -> OpenBlob:
        self.sent.append(sha)
        return super().open(sha)


def file_context(blobs: FileBlobStore, path: Path, name: str, text: str) -> ContextRef:
    path.write_text(text, encoding="utf-8")
    sha, size = blobs.put_file(path)
    return {"name": name, "label": path.name, "source": str(path), "sha": sha, "size": size, "preview": ""}


@pytest.fixture
async def resources(tmp_path: Path) -> AsyncIterator[Resources]:
    store = SentBlobs(tmp_path / "state" / "blobs")
    pool = SandboxPool(600, 4, scope=str(tmp_path))
    yield Resources(store, pool, open_answer_store(None, tmp_path / "state"))
    await pool.close_all()


async def start(resources: Resources, kind: str, contexts: list[ContextRef], tmp_path: Path) -> ReplSession:
    need_backend(kind)
    settings = RLMSettings(sandbox=kind, docker_image=TEST_IMAGE, state_dir=str(tmp_path / "state"))
    session = await resources.session("thread", settings, contexts)
    await session.ensure(None)
    return session


def run(session: ReplSession, code: str, contexts: list[ContextRef]) -> CellResult:
    return session.run(code, contexts=contexts, subcalls=NoSubCalls(), timeout=60, output_limit=1 << 16)


@pytest.mark.parametrize("kind", ["local", "docker"])
async def test_a_file_context_is_mapped_from_its_bound_blob_not_sent(
    kind: str, resources: Resources, tmp_path: Path
) -> None:
    first = file_context(resources.blobs, tmp_path / "first.txt", "context_0", TEXT)
    session = await start(resources, kind, [first], tmp_path)
    result = await run(session, SHOW.format(name="context"), [first])
    assert result.error is None, result.error
    assert result.stdout.split() == [hashlib.sha256(TEXT.encode()).hexdigest(), str(len(TEXT))]
    assert resources.blobs.sent == [], "the context crossed the channel"

    later = file_context(resources.blobs, tmp_path / "later.txt", "context_1", "ünïcode later\n" * 1000)
    result = await run(session, SHOW.format(name="context_1"), [first, later])
    assert result.stdout.split() == [later["sha"], str(len("ünïcode later\n" * 1000))]
    assert resources.blobs.sent == [later["sha"]], "a context added after the sandbox started is sent"


@pytest.mark.parametrize("kind", ["local", "docker"])
async def test_code_in_the_sandbox_cannot_change_a_bound_blob(
    kind: str, resources: Resources, tmp_path: Path
) -> None:
    context = file_context(resources.blobs, tmp_path / "ctx.txt", "context_0", TEXT)
    session = await start(resources, kind, [context], tmp_path)
    inside = session.sandbox.bound_blobs[context["sha"]]
    attempts = (
        "open(p, 'r+b').write(b'forged')",
        "open(p, 'wb').close()",
        "os.chmod(p, 0o666)",
        "os.unlink(p)",
        "os.rename(p, '/tmp/moved')",
        "os.truncate(p, 0)",
    )
    code = f"import os\np = {inside!r}\n" + "".join(
        f"try:\n    {attempt}\n    print('changed by', {attempt!r})\nexcept OSError:\n    pass\n"
        for attempt in attempts
    )
    result = await run(session, code, [context])
    assert result.error is None, result.error
    assert "changed by" not in result.stdout, result.stdout
    stored = resources.blobs.file_of(context["sha"])
    assert stored is not None and hashlib.sha256(stored.read_bytes()).hexdigest() == context["sha"]
    again = await run(session, SHOW.format(name="context"), [context])
    assert again.stdout.split()[0] == context["sha"]


async def test_a_bound_blob_the_worker_cannot_map_is_sent_instead(
    open_session, blobs, tmp_path: Path
) -> None:
    """As with a Docker daemon on another machine, which binds an empty folder where the file is not."""
    context = context_of(blobs, TEXT)
    session = await open_session("process", bound_blobs={context["sha"]: tmp_path / "not-there"})
    result = await run(session, SHOW.format(name="context"), [context])
    assert result.error is None, result.error
    assert result.stdout.split() == [context["sha"], str(len(TEXT))]


async def test_a_store_file_named_as_a_context_file_keeps_its_mount_on_docker(
    resources: Resources, tmp_path: Path
) -> None:
    stored = file_context(resources.blobs, tmp_path / "first.txt", "context_0", TEXT)
    own_file = resources.blobs.file_of(stored["sha"])
    assert own_file is not None
    named = {**stored, "source": str(own_file)}
    session = await start(resources, "docker", [named], tmp_path)
    result = await run(session, SHOW.format(name="context"), [named])
    assert result.error is None, result.error
    assert result.stdout.split() == [stored["sha"], str(len(TEXT))]
    assert resources.blobs.sent == [stored["sha"]], (
        "docker mounts a host path once: the blob came on the channel"
    )
