"""Content-addressed storage for contexts, large REPL values and snapshots.

Graph state holds only hashes, so a 100 MB context is written once here and never copied
into a checkpoint or a stream event.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import queue
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK = 1 << 20
COPY_STEP = 16 << 20


@dataclass
class OpenBlob:
    """A stored blob to be read in chunks, so sending a 1 GB context never holds it in memory."""

    file: BinaryIO
    size: int


class BlobStore(Protocol):
    def put(self, data: bytes) -> str: ...

    def put_file(self, path: Path) -> tuple[str, int]: ...

    def put_stream(self, chunks: Iterable[bytes]) -> tuple[str, int]: ...

    def get(self, sha: str) -> bytes: ...

    def open(self, sha: str) -> OpenBlob: ...

    def has(self, sha: str) -> bool: ...

    def file_of(self, sha: str) -> Path | None: ...

    def size(self, sha: str) -> int: ...

    def stored(self) -> Iterator[tuple[str, float]]: ...

    def delete(self, sha: str) -> int: ...


class BlobNotFound(KeyError):
    """A hash that no stored blob has."""


class FileBlobStore:
    """Blobs as files named by their SHA-256 under one directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, sha: str) -> Path:
        if len(sha) != 64 or not all(c in "0123456789abcdef" for c in sha):
            raise BlobNotFound(sha)
        return self.root / sha[:2] / sha[2:]

    def has(self, sha: str) -> bool:
        return self._path(sha).exists()

    def put(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        if not self.has(sha):
            target = self._path(sha)
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
                try:
                    tmp.write(data)
                    tmp.flush()
                except BaseException:
                    os.unlink(tmp.name)
                    raise
            os.replace(tmp.name, target)
        return sha

    def put_file(self, path: Path) -> tuple[str, int]:
        """Copies a file in while hashing the copy: the kernel copies a step ahead in a thread
        while this one hashes what is already copied, both without the GIL, so storing takes
        about as long as hashing alone. Hashing the copy, not the source, keeps a blob's name
        true to its bytes if the source changes meanwhile."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(path, "rb") as src, tempfile.NamedTemporaryFile(dir=self.root, delete=False) as tmp:
            try:
                sha, size = hash_while_copying(src.fileno(), tmp.fileno())
            except BaseException:
                os.unlink(tmp.name)
                raise
        self._keep(tmp.name, sha)
        return sha, size

    def put_stream(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        """Writes a stream (a pipe, a decompressed or re-encoded file) as it comes, hashing it on
        the way, so no more than a chunk of it is ever in memory."""
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        with tempfile.NamedTemporaryFile(dir=self.root, delete=False) as tmp:
            try:
                for chunk in chunks:
                    digest.update(chunk)
                    tmp.write(chunk)
                    size += len(chunk)
            except BaseException:
                os.unlink(tmp.name)
                raise
        self._keep(tmp.name, digest.hexdigest())
        return digest.hexdigest(), size

    def _keep(self, written: str, sha: str) -> None:
        if self.has(sha):
            os.unlink(written)
        else:
            self._path(sha).parent.mkdir(parents=True, exist_ok=True)
            os.replace(written, self._path(sha))

    def file_of(self, sha: str) -> Path | None:
        """The blob's own file, for a sandbox to bind read-only instead of receiving a copy.
        The worker may run as another user (nobody), so the file is made readable by all; that
        shows it to no one else while the store's folder is its owner's alone, which it is made
        here. None when the blob is gone or either cannot be changed."""
        path = self._path(sha)
        try:
            if self.root.stat().st_mode & 0o077:
                os.chmod(self.root, 0o700)
            if path.stat().st_mode & 0o444 != 0o444:
                os.chmod(path, 0o644)
        except OSError:
            return None
        return path

    def get(self, sha: str) -> bytes:
        try:
            return self._path(sha).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(sha) from None

    def open(self, sha: str) -> OpenBlob:
        try:
            file = open(self._path(sha), "rb")  # noqa: SIM115 (the caller closes it once sent)
        except FileNotFoundError:
            raise BlobNotFound(sha) from None
        return OpenBlob(file, os.fstat(file.fileno()).st_size)

    def size(self, sha: str) -> int:
        try:
            return self._path(sha).stat().st_size
        except FileNotFoundError:
            return 0

    def stored(self) -> Iterator[tuple[str, float]]:
        """Every blob's hash and the time it was written."""
        for path in self.root.glob("??/*"):
            if len(path.parent.name + path.name) == 64:
                yield path.parent.name + path.name, path.stat().st_mtime

    def delete(self, sha: str) -> int:
        """Removes a blob; returns the bytes freed."""
        path = self._path(sha)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size


def hash_while_copying(src: int, dst: int) -> tuple[str, int]:
    """The copier is always joined before this returns: the caller closes both descriptors, and a
    copier still writing would write to whatever file next took the number."""
    copied: queue.SimpleQueue[int | BaseException] = queue.SimpleQueue()
    stop = threading.Event()

    def copy() -> None:
        try:
            while not stop.is_set() and (step := copy_step(src, dst)):
                copied.put(step)
            copied.put(0)
        except BaseException as exc:
            copied.put(exc)

    copier = threading.Thread(target=copy, name="blob-copy", daemon=True)
    copier.start()
    digest = hashlib.sha256()
    buffer = memoryview(bytearray(CHUNK))
    size = 0
    try:
        while (step := copied.get()) != 0:
            if isinstance(step, BaseException):
                raise step
            while step:
                got = os.preadv(dst, [buffer[: min(step, CHUNK)]], size)
                if not got:
                    raise OSError("the copy of a blob shrank while it was hashed")
                digest.update(buffer[:got])
                size += got
                step -= got
    finally:
        stop.set()
        copier.join()
    return digest.hexdigest(), size


def copy_step(src: int, dst: int) -> int:
    """Up to COPY_STEP more bytes, in the kernel; where it cannot (another file system on an old
    kernel, a special file that copies as empty), through a buffer. 0 at the end of the source."""
    try:
        if step := os.copy_file_range(src, dst, COPY_STEP):
            return step
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise
    chunk = os.read(src, COPY_STEP)
    view = memoryview(chunk)
    while view:
        view = view[os.write(dst, view) :]
    return len(chunk)


def open_blob_store(db: str | None, state_dir: Path) -> BlobStore:
    """PostgreSQL when a database URL is set, else files under the state directory."""
    if db:
        from langgraph_rlm.persistence.postgres_blobs import PostgresBlobStore

        return PostgresBlobStore(db)
    return FileBlobStore(Path(state_dir) / "blobs")


@functools.cache
def shared_blob_store(db: str | None, state_dir: str) -> BlobStore:
    """One store per location for what runs outside a node: the graph's entry (see graph.entry)."""
    return open_blob_store(db, Path(state_dir))
