"""A person approves, edits or rejects each cell before it runs (`approve_code`).

Each block of a step is one `interrupt()`; the caller resumes with `Command(resume=decision)`,
a decision being {"action": "approve"}, {"action": "edit", "code": "..."} or
{"action": "reject", "message": "..."}. On a server the decision comes from a remote caller: a
value that is not one of these asks again, the problem named in the new interrupt.

A run of the node asks one question. LangGraph hands a node the resume values it took, in order,
each time it runs it again, and the last value sent without an interrupt id stays on the
checkpoint: after an answer sent by id, a second `interrupt()` in the same run would take that
stale value, approving a block nobody saw. So each answer is kept in the state (`Review`) and
the node runs again for the next block, or to ask again after a value that was not a decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NotRequired

from langgraph.types import interrupt
from typing_extensions import TypedDict

MAX_CODE_CHARS = 200_000
MAX_MESSAGE_CHARS = 20_000
FIELDS = {"approve": set(), "edit": {"code"}, "reject": {"message"}}
SHOWN_CHARS = 40
JSON_TYPES = (
    (bool, "a boolean"),
    (int | float, "a number"),
    (type(None), "null"),
    (dict, "an object"),
    (list | tuple, "a list"),
)


class Review(TypedDict):
    """The answers taken so far about the step's blocks, each [action, code or message], and what
    was wrong with the last value, which the next request names."""

    decisions: list[list[str]]
    error: NotRequired[str]


@dataclass
class Reviewed:
    """The blocks to run, as approved or edited (their numbers in `edited`); a rejection ends the
    step at its block."""

    blocks: list[str]
    edited: set[int] = field(default_factory=set)
    rejected: int | None = None
    message: str = ""


def review(blocks: list[str], iteration: int, taken: Review | None) -> Reviewed | Review:
    """Asks about the next block: the blocks to run once every block is answered or one is
    rejected, else the answers so far, for the node's next run to ask on. Everything before the
    `interrupt()` must be safe to repeat: the node runs again from its start on every resume."""
    decisions = taken["decisions"] if taken else []
    index = len(decisions) + 1
    request: dict[str, Any] = {
        "kind": "approve_code",
        "iteration": iteration,
        "block": index,
        "blocks": len(blocks),
        "code": blocks[index - 1],
    }
    if taken and "error" in taken:
        request["error"] = taken["error"]
    try:
        action, text = decision(interrupt(request))
    except ValueError as exc:
        return Review(decisions=decisions, error=str(exc))
    decisions = [*decisions, [action, text]]
    if action != "reject" and len(decisions) < len(blocks):
        return Review(decisions=decisions)
    return reviewed(blocks, decisions)


def reviewed(blocks: list[str], decisions: list[list[str]]) -> Reviewed:
    kept = Reviewed([])
    for index, ((action, text), code) in enumerate(zip(decisions, blocks, strict=False), 1):
        if action == "reject":
            kept.rejected, kept.message = index, text
            return kept
        if action == "edit":
            kept.edited.add(index)
        kept.blocks.append(text or code)
    return kept


def decision(value: Any) -> tuple[str, str]:
    """(action, code or message) from a resume value; ValueError with one short line when it is
    not one. Whatever a caller sends gets that answer and no other exception: LangGraph hands the
    node each resume value it took again on every later resume, so one that raised here once
    would raise for good. The line names the value's type, never the value, which may be huge.
    A lone surrogate (only a Python caller can send one) becomes "?", as the checkpointer stores
    it: a replay decides the same, and the model and the sandbox get UTF-8."""
    action = value.get("action") if isinstance(value, dict) else None
    if not isinstance(action, str) or action not in FIELDS:
        shown = described(value)
        if isinstance(value, dict):
            shown = (
                f"{{'action': {described(action)}}}" if "action" in value else "an object without 'action'"
            )
        raise ValueError(f"resume with {{'action': 'approve' | 'edit' | 'reject', ...}}, not {shown}")
    extra = [described(key) for key in value if key != "action" and key not in FIELDS[action]]
    if extra:
        more = f" and {len(extra) - 3} more" if len(extra) > 3 else ""
        raise ValueError(f"{action!r} takes no {', '.join(extra[:3])}{more}")
    if action == "approve":
        return action, ""
    key, limit = ("code", MAX_CODE_CHARS) if action == "edit" else ("message", MAX_MESSAGE_CHARS)
    text = value.get(key, "")
    if not isinstance(text, str) or len(text) > limit:
        got = f"{len(text):,} characters" if isinstance(text, str) else described(text)
        raise ValueError(f"{action!r} needs {key!r} as text of at most {limit:,} characters, not {got}")
    text = text if text.isascii() else text.encode(errors="replace").decode()
    if action == "edit" and not text.strip():
        raise ValueError("'edit' needs the replacement code in 'code'")
    return action, text


def described(value: Any) -> str:
    """A string as its first characters, anything else as its JSON type."""
    if isinstance(value, str):
        shown = repr(value[: SHOWN_CHARS + 1])
        return shown if len(shown) <= SHOWN_CHARS else shown[:SHOWN_CHARS] + "..."
    return next((name for kind, name in JSON_TYPES if isinstance(value, kind)), type(value).__name__)
