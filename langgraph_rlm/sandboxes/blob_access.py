"""What one thread's worker may do with the blob store, which every thread shares.

A blob's hash is no secret (a context's hash is a hash of public text), so holding one must not
be enough to read it: a worker reads only its own thread's blobs (its contexts, the snapshots
the host restored into it, what it stored itself), and stores at most a quota per question.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from langgraph_rlm.persistence.blobs import BlobStore, OpenBlob
from langgraph_rlm.sandboxes.base import WorkerRefused
from langgraph_rlm.sandboxes.worker.protocol import ProtocolError, check_manifest, manifest_blobs


class BlobAccess:
    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs
        self.readable: set[str] = set()
        self.quota_left: int | None = None
        self.stored = 0

    def allow(self, shas: Iterable[str]) -> None:
        self.readable.update(shas)

    def start_cell(self, quota: int | None) -> None:
        """Bytes the worker may still store in this question (None: no limit)."""
        self.quota_left = quota
        self.stored = 0

    def check(self, sha: str) -> None:
        if sha not in self.readable:
            raise LookupError(f"no blob {sha[:12]} in this thread")

    def open(self, sha: str) -> OpenBlob:
        self.check(sha)
        return self.blobs.open(sha)

    def put(self, sha: str, data: bytes) -> None:
        """Stores what the worker sent, if it is what the worker says and fits the quota."""
        if hashlib.sha256(data).hexdigest() != sha:
            raise WorkerRefused(f"the worker sent a blob whose content does not match its hash {sha[:12]}")
        if self.quota_left is not None and len(data) > self.quota_left - self.stored:
            raise WorkerRefused(
                f"the REPL tried to store more than this question's quota of {self.quota_left >> 20:,} MiB "
                "(--max-stored-mb)"
            )
        self.stored += len(data)
        self.blobs.put(data)
        self.readable.add(sha)

    def check_snapshot(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """A manifest that names only blobs this thread may read, or WorkerRefused."""
        try:
            check_manifest(manifest)
        except ProtocolError as exc:
            raise WorkerRefused(f"the worker sent {exc}") from None
        foreign = manifest_blobs(manifest) - self.readable
        if foreign:
            raise WorkerRefused(f"the worker's snapshot names {len(foreign)} blob(s) it never stored")
        return manifest
