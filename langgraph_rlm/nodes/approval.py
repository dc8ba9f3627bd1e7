"""A person approves, edits or rejects each cell before it runs (`approve_code`).

Each block of a step is one `interrupt()`; the caller resumes with `Command(resume=decision)`,
a decision being {"action": "approve"}, {"action": "edit", "code": "..."} or
{"action": "reject", "message": "..."}. On a server the decision comes from a remote caller: a
value that is not one of these asks again, the problem named in the new interrupt, because a
resume value LangGraph has taken stays with the paused node and would fail every later resume.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from langgraph.types import interrupt

MAX_CODE_CHARS = 200_000
MAX_MESSAGE_CHARS = 20_000
FIELDS = {"approve": set(), "edit": {"code"}, "reject": {"message"}}


@dataclass
class Reviewed:
    """The blocks to run, as approved or edited (their numbers in `edited`); a rejection ends the
    step at its block."""

    blocks: list[str]
    edited: set[int] = field(default_factory=set)
    rejected: int | None = None
    message: str = ""


def review(blocks: list[str], iteration: int) -> Reviewed:
    """Asks about each block in turn. Everything before the first `interrupt()` must be safe to
    repeat: the node runs again from its start on every resume."""
    kept = Reviewed([])
    for index, code in enumerate(blocks, 1):
        request: dict[str, Any] = {
            "kind": "approve_code",
            "iteration": iteration,
            "block": index,
            "blocks": len(blocks),
            "code": code,
        }
        while True:
            try:
                action, text = decision(interrupt(request))
                break
            except ValueError as exc:
                request = {**request, "error": str(exc)}
        if action == "reject":
            kept.rejected, kept.message = index, text
            return kept
        if action == "edit":
            kept.edited.add(index)
        kept.blocks.append(text or code)
    return kept


def decision(value: Any) -> tuple[str, str]:
    """(action, code or message) from a resume value; ValueError with one line when it is not one."""
    if not isinstance(value, dict) or value.get("action") not in FIELDS:
        shown = repr(value.get("action") if isinstance(value, dict) else value)[:40]
        raise ValueError(f"resume with {{'action': 'approve' | 'edit' | 'reject', ...}}, not {shown}")
    action = value["action"]
    extra = set(value) - {"action"} - FIELDS[action]
    if extra:
        raise ValueError(f"{action!r} takes no {', '.join(sorted(map(str, extra)))[:80]}")
    if action == "approve":
        return action, ""
    key, limit = ("code", MAX_CODE_CHARS) if action == "edit" else ("message", MAX_MESSAGE_CHARS)
    text = value.get(key, "")
    if not isinstance(text, str) or len(text) > limit:
        raise ValueError(f"{action!r} needs {key!r} as text of at most {limit:,} characters")
    if action == "edit" and not text.strip():
        raise ValueError("'edit' needs the replacement code in 'code'")
    return action, text
