"""Turning what the user gave (file paths or text) into stored, named contexts."""

from __future__ import annotations

import os
from pathlib import Path

from langgraph_rlm.graph.state import ContextRef
from langgraph_rlm.persistence.blobs import BlobStore

PREVIEW_CHARS = 300
SNIFF_BYTES = 1 << 16


class ContextError(ValueError):
    """A context that cannot be used; the message is one line for the user."""


def check_context_file(path: str | Path) -> Path:
    """The file's absolute path, or ContextError saying why it cannot be a context."""
    file = Path(path).expanduser()
    if not file.exists():
        raise ContextError(f"context file not found: {path}")
    if file.is_dir():
        raise ContextError(f"context is a directory, not a file: {path} (pass its files, or use --allow-dir)")
    if not os.access(file, os.R_OK):
        raise ContextError(f"context file is not readable: {path}")
    try:
        with open(file, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError as exc:
        raise ContextError(f"context file cannot be read: {path} ({exc.strerror})") from None
    if b"\0" in head:
        raise ContextError(f"context file looks binary, not text: {path}")
    return file.resolve()


def is_context_path(item: str) -> bool:
    """Whether a string names an existing file; anything else is taken as the text itself."""
    if len(item) >= 4096 or "\n" in item or "\0" in item:
        return False
    try:
        return Path(item).expanduser().is_file()
    except OSError:
        return False


def describe_blob(sha: str, index: int, blobs: BlobStore) -> ContextRef:
    """A context that is already stored, such as one a parent RLM hands to a child."""
    data = blobs.get(sha)
    preview = data[: PREVIEW_CHARS * 4].decode("utf-8", "replace")[:PREVIEW_CHARS]
    name = f"context_{index}"
    return ContextRef(name=name, label=name, source=None, sha=sha, size=len(data), preview=preview)


def ingest(item: str, index: int, blobs: BlobStore) -> ContextRef:
    """Stores a path's file (or a text given inline) once, by content, and describes it."""
    name = f"context_{index}"
    if is_context_path(item):
        path = check_context_file(item)
        sha, size = blobs.put_file(path)
        with open(path, "rb") as handle:
            preview = handle.read(PREVIEW_CHARS * 4).decode("utf-8", "replace")[:PREVIEW_CHARS]
        return ContextRef(name=name, label=path.name, source=str(path), sha=sha, size=size, preview=preview)
    data = item.encode("utf-8", "surrogatepass")
    return ContextRef(
        name=name, label=name, source=None, sha=blobs.put(data), size=len(data), preview=item[:PREVIEW_CHARS]
    )
