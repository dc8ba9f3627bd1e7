"""Text sent as a context is swapped for its reference the moment it enters the state, so the
state, its checkpoints, its stream events and every node's trace carry the reference, never the
text. The swap happens in a channel reducer, which may not touch the disk (a server's event loop
runs it), so the text waits here until start_turn stores it; a checkpointer from
persistence.checkpointer has stored it already, with the input checkpoint."""

from __future__ import annotations

import hashlib
from typing import Any

from langgraph_rlm.persistence.blobs import BlobStore

PREVIEW_CHARS = 300
WAITING_LIMIT = 16

waiting: dict[str, str] = {}


def surely_text(item: str) -> bool:
    """Too long, or of characters no path has: the text itself, whatever the disk holds."""
    return len(item) >= 4096 or "\n" in item or "\0" in item


def arrival(item: Any) -> Any:
    """A text's unnamed reference (start_turn names it); paths and short text wait for start_turn,
    which knows the run's folders."""
    if not (isinstance(item, str) and surely_text(item)):
        return item
    data = item.encode("utf-8", "surrogatepass")
    sha = hashlib.sha256(data).hexdigest()
    waiting[sha] = item
    while len(waiting) > WAITING_LIMIT:
        waiting.pop(next(iter(waiting)))
    return {
        "name": "",
        "label": "",
        "source": None,
        "sha": sha,
        "size": len(data),
        "preview": item[:PREVIEW_CHARS],
    }


def settle(sha: str, blobs: BlobStore) -> None:
    """Stores the text behind a reference, if it waits here and the store lacks it."""
    text = waiting.pop(sha, None)
    if text is not None and not blobs.has(sha):
        blobs.put(text.encode("utf-8", "surrogatepass"))
