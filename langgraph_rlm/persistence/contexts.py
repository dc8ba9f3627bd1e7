"""Turning what the user gave (text, a file, a folder, a pipe) into stored, named contexts of
UTF-8 text: the CLI, `rlm init` and the graph's own path contexts all come through `ingest`."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import select
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from typing_extensions import TypedDict

from langgraph_rlm.extras import MissingExtra
from langgraph_rlm.persistence.blobs import CHUNK, BlobStore
from langgraph_rlm.persistence.encodings import (
    UTF8,
    NotText,
    all_utf8,
    as_utf8,
    looks_binary,
    text_encoding,
    valid_utf8,
)
from langgraph_rlm.persistence.folders import folder_files
from langgraph_rlm.persistence.sources import is_plain, open_source
from langgraph_rlm.sandboxes.worker.protocol import SHA

PREVIEW_CHARS = 300
SNIFF_BYTES = 1 << 16
FOLDER_SNIFF_BYTES = 1 << 13
MIB = 1 << 20
PIPE_WAIT = 0.2


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


log = logging.getLogger(__name__)


@dataclass
class Intake:
    """What taking contexts in tells the user, and how much one folder may hold: the CLI prints
    `warn` and `say` on stderr, the graph streams its warnings as events."""

    warn: Callable[[str], None] = log.warning
    say: Callable[[str], None] = log.info
    folder_limit_mb: int = 1024


def check_context_path(path: str | Path) -> Path:
    """The path as given (a pipe such as /dev/stdin must not resolve to its /proc name), or
    ContextError saying why it cannot be a context."""
    given = Path(path).expanduser()
    if not given.exists():
        raise ContextError(f"context file not found: {path}")
    if not os.access(given, os.R_OK):
        raise ContextError(f"context file is not readable: {path}")
    return given


def surely_text(item: str) -> bool:
    """Too long, or of characters no path has: the text itself, whatever the disk holds."""
    return len(item) >= 4096 or "\n" in item or "\0" in item


def is_context_path(item: str, folders: Sequence[Path] | None = None) -> bool:
    """Whether a string names a file, a folder or a pipe to read (anywhere, or only inside
    `folders` when given); anything else is taken as the text itself, without looking at the
    disk for it."""
    if surely_text(item):
        return False
    try:
        return within(item, folders) and Path(item).expanduser().exists()
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
    if not isinstance(sha, str) or not SHA.match(sha):
        raise ContextError("a context must be a file path or text (or a stored context's reference)")
    if not blobs.has(sha):
        label = str(item.get("label") or item.get("name") or "context")[:200]
        raise ContextError(
            f"context {label!r} is no longer in the store (blob {sha[:12]}... was deleted): give it again "
            "with --context (the same content is found again), or forget the thread with `rlm reset`"
        )
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


def ingest(
    item: str,
    index: int,
    blobs: BlobStore,
    folders: Sequence[Path] | None = None,
    intake: Intake | None = None,
) -> list[ContextRef]:
    """Stores what a path holds (or a text given inline) once, by content, and describes it; a
    folder gives one context per file. With `folders`, only paths inside them are read (what a
    remote caller may name)."""
    if is_context_path(item, folders):
        return ingest_path(check_context_path(item), index, blobs, intake or Intake())
    return [text_ref(item, f"context_{index}", blobs)]


def ingest_path(path: Path, index: int, blobs: BlobStore, intake: Intake) -> list[ContextRef]:
    if path.is_dir():
        return folder_refs(path, index, blobs, intake)
    ref = file_ref(path, path.name, f"context_{index}", blobs, intake)
    if not ref["size"]:
        intake.warn(f"{ref['label']} is empty")
    return [ref]


def folder_refs(root: Path, index: int, blobs: BlobStore, intake: Intake) -> list[ContextRef]:
    """Every text file under `root` that is not empty, labelled with its path there; nothing is
    stored when they hold more than the folder limit."""
    files = [path for path in folder_files(root) if path.stat().st_size and is_text_file(path)]
    total = sum(path.stat().st_size for path in files)
    if total > intake.folder_limit_mb * MIB:
        raise ContextError(
            f"{root} holds {amount(total)} of text files, over the limit of {intake.folder_limit_mb:,} MiB "
            "(max_folder_mb: --max-folder-mb, RLM_MAX_FOLDER_MB)"
        )
    if not files:
        raise ContextError(
            f"{root} has no text files to read (hidden, binary and .gitignored ones are left out)"
        )
    intake.say(f"{root}: {len(files):,} text file(s), {amount(total)}")
    return [
        file_ref(path, path.relative_to(root).as_posix(), f"context_{index + n}", blobs, intake)
        for n, path in enumerate(files)
    ]


def is_text_file(path: Path) -> bool:
    """A folder's binary files are passed over, as git's diff does: by a look at their head."""
    try:
        with open_source(path) as stream:
            head = stream.read(FOLDER_SNIFF_BYTES)
    except MissingExtra:
        return True
    except Exception:
        return False
    return not looks_binary(head) and text_encoding(head, complete=len(head) < FOLDER_SNIFF_BYTES) is not None


def file_ref(path: Path, label: str, name: str, blobs: BlobStore, intake: Intake) -> ContextRef:
    """A regular file stays the context's `source` (the sandbox may open it); a pipe is read once,
    so its context has none."""
    regular = stat.S_ISREG(path.stat().st_mode)
    try:
        if is_plain(path):
            sha, size = stored_plain(path, label, blobs, intake)
        else:
            with open_source(path) as stream:
                if not regular and not at_end(stream):
                    intake.say(f"reading {label}…")
                sha, size = stored_stream(stream, label, blobs, intake)
    except (ContextError, MissingExtra):
        raise
    except Exception as exc:
        reason = getattr(exc, "strerror", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ContextError(f"{label} cannot be read: {reason}") from None
    source = str(path.resolve()) if regular else None
    return ContextRef(name=name, label=label, source=source, sha=sha, size=size, preview=preview(blobs, sha))


def at_end(stream: BinaryIO) -> bool:
    """Whether a pipe ended before anything came (a caller's stdin left empty): said only when
    text comes, or is waited for."""
    return bool(select.select([stream], [], [], PIPE_WAIT)[0]) and not stream.peek(1)


def stored_plain(path: Path, label: str, blobs: BlobStore, intake: Intake) -> tuple[str, int]:
    """A UTF-8 file is copied in the kernel, then its copy checked (a pass over memory the copy
    just filled); a file that is not UTF-8 after all is read again, decoded."""
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if b"\0" not in head and valid_utf8(head, complete=len(head) < SNIFF_BYTES):
        sha, size = blobs.put_file(path)
        with contextlib.closing(blobs.open(sha).file) as stored:
            if all_utf8(chunks_of(stored)):
                return sha, size
    with open(path, "rb") as handle:
        return stored_stream(handle, label, blobs, intake)


def stored_stream(stream: BinaryIO, label: str, blobs: BlobStore, intake: Intake) -> tuple[str, int]:
    head = stream.read(SNIFF_BYTES)
    if looks_binary(head):
        raise ContextError(f"{label} looks binary, not text")
    try:
        return blobs.put_stream(as_utf8(itertools.chain([head], chunks_of(stream)), label, intake.warn))
    except NotText as exc:
        raise ContextError(str(exc)) from None


def chunks_of(stream: BinaryIO) -> Iterator[bytes]:
    return iter(lambda: stream.read(CHUNK), b"")


def preview(blobs: BlobStore, sha: str) -> str:
    with contextlib.closing(blobs.open(sha).file) as stored:
        return stored.read(PREVIEW_CHARS * 4).decode(UTF8, "replace")[:PREVIEW_CHARS]


def amount(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def joined(stored: Sequence[ContextRef], refs: Iterable[ContextRef]) -> list[ContextRef]:
    """`refs` not already among `stored` (the same bytes from the same source), in order; one
    without a name is named by its place, `context_N`, and labelled so unless it has a label."""
    added: list[ContextRef] = []
    for ref in refs:
        if any((ref["sha"], ref["source"]) == (c["sha"], c["source"]) for c in [*stored, *added]):
            continue
        if not ref["name"]:
            name = f"context_{len(stored) + len(added)}"
            ref = ContextRef(ref, name=name, label=ref["label"] or name)
        added.append(ref)
    return added


def unnamed(refs: Iterable[ContextRef]) -> list[ContextRef]:
    """References to be named where they join a thread's contexts (see `joined`)."""
    return [ContextRef(ref, name="") for ref in refs]


def text_ref(text: str, name: str, blobs: BlobStore) -> ContextRef:
    data = text.encode("utf-8", "surrogatepass")
    return ContextRef(
        name=name, label=name, source=None, sha=blobs.put(data), size=len(data), preview=text[:PREVIEW_CHARS]
    )
