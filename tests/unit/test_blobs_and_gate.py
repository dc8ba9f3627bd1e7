import hashlib
import os
from pathlib import Path

import pytest

from langgraph_rlm.persistence.blobs import COPY_STEP, BlobNotFound, FileBlobStore
from langgraph_rlm.persistence.contexts import ContextError, check_context_path, checked_ref, ingest
from langgraph_rlm.sandboxes.file_gate import FileGate


def test_blobs_are_stored_once_by_content(tmp_path):
    store = FileBlobStore(tmp_path)
    sha = store.put(b"hello")
    assert sha == hashlib.sha256(b"hello").hexdigest()
    assert store.put(b"hello") == sha and store.get(sha) == b"hello"
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) == 1


def test_put_file_hashes_while_copying(tmp_path):
    source = tmp_path / "big.txt"
    source.write_bytes(b"x" * 3_000_000)
    store = FileBlobStore(tmp_path / "blobs")
    sha, size = store.put_file(source)
    assert size == 3_000_000 and sha == hashlib.sha256(source.read_bytes()).hexdigest()
    assert store.get(sha) == source.read_bytes()


def test_put_file_stores_a_file_of_many_copy_steps_and_a_special_file_whole(tmp_path):
    source = tmp_path / "big.txt"
    source.write_bytes(os.urandom((COPY_STEP * 5) // 2 + 7))
    store = FileBlobStore(tmp_path / "blobs")
    sha, size = store.put_file(source)
    assert (sha, size) == (hashlib.sha256(source.read_bytes()).hexdigest(), source.stat().st_size)
    assert store.get(sha) == source.read_bytes()
    special = Path("/proc/version")
    sha, size = store.put_file(special)
    assert size > 0 and store.get(sha) == special.read_bytes()


def test_a_blob_bound_into_a_sandbox_is_readable_there_and_only_its_owner_can_reach_it(tmp_path):
    store = FileBlobStore(tmp_path / "blobs")
    sha = store.put(b"secret context")
    (tmp_path / "blobs").chmod(0o755)
    path = store.file_of(sha)
    assert path is not None and path.read_bytes() == b"secret context"
    assert path.stat().st_mode & 0o444 == 0o444, "the worker may run as nobody"
    assert (tmp_path / "blobs").stat().st_mode & 0o777 == 0o700, "others cannot reach the store's files"
    assert store.file_of("0" * 64) is None


def test_unknown_or_malformed_hashes_are_not_found(tmp_path):
    store = FileBlobStore(tmp_path)
    with pytest.raises(BlobNotFound):
        store.get("0" * 64)
    with pytest.raises(BlobNotFound):
        store.get("../../etc/passwd")


def test_ingest_names_contexts_and_keeps_a_short_preview(tmp_path):
    store = FileBlobStore(tmp_path / "blobs")
    path = tmp_path / "log.txt"
    path.write_text("line\n" * 1000)
    [ref] = ingest(str(path), 2, store)
    assert ref["name"] == "context_2" and ref["label"] == "log.txt" and ref["source"] == str(path)
    assert ref["size"] == 5000 and len(ref["preview"]) == 300
    [inline] = ingest("not a path, just text", 0, store)
    assert inline["source"] is None and store.get(inline["sha"]) == b"not a path, just text"
    [long_line] = ingest("x" * 1000, 1, store)
    assert long_line["source"] is None and long_line["size"] == 1000


def test_with_folders_only_files_inside_them_are_read_and_symlinks_do_not_lead_out(tmp_path):
    store = FileBlobStore(tmp_path / "blobs")
    shared, private = tmp_path / "shared", tmp_path / "private"
    shared.mkdir(), private.mkdir()
    (shared / "ok.txt").write_text("shared text")
    (private / "secret.txt").write_text("secret")
    (shared / "link.txt").symlink_to(private / "secret.txt")
    assert store.get(ingest(str(shared / "ok.txt"), 0, store, [shared])[0]["sha"]) == b"shared text"
    for outside in (private / "secret.txt", shared / "link.txt", shared / ".." / "private" / "secret.txt"):
        [ref] = ingest(str(outside), 0, store, [shared])
        assert ref["source"] is None and store.get(ref["sha"]) == str(outside).encode()


def test_a_context_reference_is_taken_only_as_far_as_the_store_and_folders_confirm(tmp_path):
    store = FileBlobStore(tmp_path / "blobs")
    sha = store.put(b"stored")
    ref = checked_ref({"name": "context_0", "sha": sha, "source": None, "preview": "s"}, store, [])
    assert ref["size"] == 6 and ref["source"] is None
    for forged in (
        {"sha": "0" * 64},
        {"sha": "../../etc/passwd"},
        "not a dict",
        {"sha": sha, "source": "/etc/passwd"},
    ):
        with pytest.raises(ContextError):
            checked_ref(forged, store, [tmp_path])
    assert checked_ref({"sha": sha, "source": "/etc/passwd"}, store, None)["source"] == "/etc/passwd"


def test_context_file_checks(tmp_path):
    with pytest.raises(ContextError, match="not found"):
        check_context_path(tmp_path / "missing")
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"ab\0cd")
    with pytest.raises(ContextError, match="binary"):
        ingest(str(binary), 0, FileBlobStore(tmp_path / "blobs"))


def test_file_gate_allows_only_named_files_and_folders(tmp_path: Path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    named = tmp_path / "named.txt"
    named.write_text("n")
    (tmp_path / "other.txt").write_text("o")
    (folder / "escape.txt").symlink_to(tmp_path / "other.txt")
    gate = FileGate([named], [folder])
    assert gate.check(str(named)) == named
    assert gate.check(str(folder / "a.txt")) == folder / "a.txt"
    for denied in (tmp_path / "other.txt", folder / "escape.txt", folder / ".." / "other.txt"):
        with pytest.raises(PermissionError):
            gate.check(str(denied))
