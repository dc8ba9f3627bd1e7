"""Blobs in PostgreSQL, so every worker of a LangGraph server on one database shares contexts
and REPL snapshots."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from langgraph_rlm.extras import POSTGRES, require
from langgraph_rlm.persistence.blobs import CHUNK, BlobNotFound, OpenBlob

SCHEMA = """
CREATE TABLE IF NOT EXISTS rlm_blobs (
    sha text PRIMARY KEY,
    data bytea NOT NULL,
    written timestamptz NOT NULL DEFAULT now()
)
"""


class PostgresBlobStore:
    def __init__(self, url: str) -> None:
        psycopg = require("psycopg", "postgres", POSTGRES)
        self.connection = psycopg.connect(url, autocommit=True)
        self.lock = threading.Lock()
        with self.lock:
            self.connection.execute(SCHEMA)

    def _one(self, query: str, *args: object) -> tuple | None:
        with self.lock:
            return self.connection.execute(query, args).fetchone()

    def has(self, sha: str) -> bool:
        return self._one("SELECT 1 FROM rlm_blobs WHERE sha = %s", sha) is not None

    def put(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        with self.lock:
            self.connection.execute(
                "INSERT INTO rlm_blobs (sha, data) VALUES (%s, %s) ON CONFLICT (sha) DO NOTHING", (sha, data)
            )
        return sha

    def put_file(self, path: Path) -> tuple[str, int]:
        digest = hashlib.sha256()
        parts = []
        with open(path, "rb") as source:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                parts.append(chunk)
        data = b"".join(parts)
        if not self.has(digest.hexdigest()):
            self.put(data)
        return digest.hexdigest(), len(data)

    def put_stream(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        """A bytea value is sent whole, so the stream is gathered first."""
        data = b"".join(chunks)
        return self.put(data), len(data)

    def get(self, sha: str) -> bytes:
        row = self._one("SELECT data FROM rlm_blobs WHERE sha = %s", sha)
        if row is None:
            raise BlobNotFound(sha)
        return bytes(row[0])

    def open(self, sha: str) -> OpenBlob:
        """A bytea value arrives whole, so this store holds a blob in memory while it is sent."""
        data = self.get(sha)
        return OpenBlob(io.BytesIO(data), len(data))

    def file_of(self, sha: str) -> Path | None:
        """A bytea value has no file to bind, so a sandbox receives a copy."""
        return None

    def size(self, sha: str) -> int:
        row = self._one("SELECT octet_length(data) FROM rlm_blobs WHERE sha = %s", sha)
        return row[0] if row else 0

    def stored(self) -> Iterator[tuple[str, float]]:
        with self.lock:
            rows = self.connection.execute(
                "SELECT sha, extract(epoch FROM written) FROM rlm_blobs"
            ).fetchall()
        for sha, written in rows:
            yield sha, float(written)

    def delete(self, sha: str) -> int:
        row = self._one("DELETE FROM rlm_blobs WHERE sha = %s RETURNING octet_length(data)", sha)
        return row[0] if row else 0
