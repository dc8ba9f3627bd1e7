"""Turning what the user gave (file paths or text) into stored, named contexts."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from typing_extensions import TypedDict

from langgraph_rlm.persistence.blobs import BlobStore
from langgraph_rlm.sandboxes.worker.protocol import SHA

PREVIEW_CHARS = 300
SNIFF_BYTES = 1 << 16


class ContextRef(TypedDict):
    """A context stored once in the blob store; the REPL sees it as `name`."""

    name: str
    label: str
    source: str | None
    sha: str
    size: int
    preview: str


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


def surely_text(item: str) -> bool:
    """Too long, or of characters no path has: the text itself, whatever the disk holds."""
    return len(item) >= 4096 or "\n" in item or "\0" in item


def is_context_path(item: str, folders: Sequence[Path] | None = None) -> bool:
    """Whether a string names a file to read (anywhere, or only inside `folders` when given);
    anything else is taken as the text itself, without looking at the disk for it."""
    if surely_text(item):
        return False
    try:
        return within(item, folders) and Path(item).expanduser().is_file()
    except (OSError, ValueError):
        return False


def within(path: str, folders: Sequence[Path] | None) -> bool:
    """Whether a path lies inside one of `folders` once resolved (None: anywhere)."""
    if folders is None:
        return True
    real = Path(os.path.realpath(Path(path).expanduser()))
    return any(real.is_relative_to(os.path.realpath(folder)) for folder in folders)


def checked_ref(item: Any, blobs: BlobStore, folders: Sequence[Path] | None) -> ContextRef:
    """A context handed in already stored (by `rlm init`, a parent RLM to its child, or the
    graph's entry: see graph.entry) is taken only as far as the store and the path
    rule confirm it: a forged reference could otherwise name any blob, or any host file for the
    sandbox to mount."""
    sha = item.get("sha") if isinstance(item, dict) else None
    if not isinstance(sha, str) or not SHA.match(sha) or not blobs.has(sha):
        raise ContextError("a context must be a file path or text (or a stored context's reference)")
    source = item.get("source")
    if source is not None and not (isinstance(source, str) and within(source, folders)):
        raise ContextError(f"context {str(source)[:200]!r} is outside the folders this run may read")
    name, label = str(item.get("name", "context")), str(item.get("label", item.get("name", "context")))
    return ContextRef(
        name=name[:100],
        label=label[:200],
        source=source,
        sha=sha,
        size=blobs.size(sha),
        preview=str(item.get("preview", ""))[:PREVIEW_CHARS],
    )


def describe_blob(sha: str, index: int, blobs: BlobStore) -> ContextRef:
    """A context that is already stored, such as one a parent RLM hands to a child."""
    data = blobs.get(sha)
    preview = data[: PREVIEW_CHARS * 4].decode("utf-8", "replace")[:PREVIEW_CHARS]
    name = f"context_{index}"
    return ContextRef(name=name, label=name, source=None, sha=sha, size=len(data), preview=preview)


def ingest(item: str, index: int, blobs: BlobStore, folders: Sequence[Path] | None = None) -> ContextRef:
    """Stores a path's file (or a text given inline) once, by content, and describes it; with
    `folders`, only files inside them are read (what a remote caller may name)."""
    name = f"context_{index}"
    if is_context_path(item, folders):
        path = check_context_file(item)
        sha, size = blobs.put_file(path)
        with open(path, "rb") as handle:
            preview = handle.read(PREVIEW_CHARS * 4).decode("utf-8", "replace")[:PREVIEW_CHARS]
        return ContextRef(name=name, label=path.name, source=str(path), sha=sha, size=size, preview=preview)
    return text_ref(item, name, blobs)


def text_ref(text: str, name: str, blobs: BlobStore) -> ContextRef:
    data = text.encode("utf-8", "surrogatepass")
    return ContextRef(
        name=name, label=name, source=None, sha=blobs.put(data), size=len(data), preview=text[:PREVIEW_CHARS]
    )
