"""The frames between the host and the worker, defined once for both sides.

A frame is one JSON object on one line; when it names `nbytes`, that many raw bytes follow
(when the host's frame names `piped` instead, they come on the sandbox's blob pipe).
The worker runs code a model wrote, and that code can reach the worker's end of the channel,
so everything the worker sends is hostile input to the host: `check_from_worker` and
`check_manifest` are the host's gate, and any frame they refuse means a dead worker.

Standard library only, Python 3.9+: the worker imports it from inside every sandbox.
"""

import hashlib
import json
import re

MAX_LINE = 16 << 20
"""The longest header line the host reads: cell output is clipped long before this."""

MAX_TEXT = 8 << 20
MAX_NAME = 4096
SHA = re.compile(r"[0-9a-f]{64}\Z")
REQUEST_ID = re.compile(r"[wk][0-9]{1,18}\Z")
MANIFEST_FORMAT = 2


class ProtocolError(ValueError):
    """A frame the worker should never send: the worker is treated as dead."""


def encode(message, data=None):
    """One frame: the header line, then the raw bytes it announces."""
    if data is not None:
        message = dict(message, nbytes=len(data))
    line = json.dumps(message, separators=(",", ":")).encode() + b"\n"
    return line + data if data is not None else line


def manifest_id(manifest):
    """A snapshot's id, as both sides compute it: the hash of its sorted JSON."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def value_seconds(left):
    """How long one value of a snapshot may take to load, given the seconds the restore has left:
    a third of them, so values whose loading hangs cost at most the whole restore together, and
    the values after them still get time. The worker stops a value at this limit with its alarm;
    the host ends a worker still loading it at half as much again (code that ignores the alarm),
    which leaves the rest a fresh worker and time to load in."""
    return max(0.0, left) / 3


def overran(seconds):
    """Why a value was dropped from a restore, as both sides say it."""
    return "loading it did not finish in %.3gs" % seconds


# --- checks on what the worker sends ---------------------------------------------------------


def _text(limit):
    return lambda value: isinstance(value, str) and len(value) <= limit


def _optional(check):
    return lambda value: value is None or check(value)


def _sha(value):
    return isinstance(value, str) and SHA.match(value) is not None


def _count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _request_id(value):
    return isinstance(value, str) and REQUEST_ID.match(value) is not None


def _mapping(check_value):
    """A dict from names to values that pass `check_value`."""
    return lambda value: (
        isinstance(value, dict) and all(map(_name, value)) and all(map(check_value, value.values()))
    )


_name = _text(MAX_NAME)
WORKER_FRAMES = {
    "ready": {"pid": _count, "pickler": _name, "python?": _name, "at?": _optional(_sha)},
    "done": {"id": _count},
    "put_blob": {"sha": _sha},
    "restoring": {"name": _name},
    "dropped": {"name": _name, "reason": _name},
    "get_blob": {"id": _request_id, "sha": _sha, "copy?": lambda value: value is True},
    "read_file": {"id": _request_id, "path": _name},
    "llm_query": {"id": _request_id, "prompt": _text(MAX_TEXT), "model": _optional(_name)},
    "rlm_query": {"id": _request_id, "prompt": _text(MAX_TEXT), "context_sha": _optional(_sha)},
}
"""What each op the worker may send carries; `name?` marks a field that may be left out."""

DONE_FIELDS = {
    "error": _optional(_text(MAX_LINE)),
    "stdout": _text(MAX_LINE),
    "stderr": _text(MAX_LINE),
    "final": _optional(_text(MAX_LINE)),
    "manifest": lambda value: isinstance(value, dict),
}


def check_from_worker(line, max_blob):
    """The frame on `line` if it is one the worker may send, with at most `max_blob` bytes after it."""
    try:
        frame = json.loads(line)
    except ValueError:
        raise ProtocolError("a line that is not JSON: %r" % line[:80]) from None
    if not isinstance(frame, dict) or frame.get("op") not in WORKER_FRAMES:
        raise ProtocolError("an unknown frame: %s" % _sample(frame))
    for key, check in WORKER_FRAMES[frame["op"]].items():
        name = key.rstrip("?")
        if name not in frame and key.endswith("?"):
            continue
        if name not in frame or not check(frame[name]):
            raise ProtocolError("a %s frame with a bad %r: %s" % (frame["op"], name, _sample(frame)))
    if frame["op"] == "done":
        for name, check in DONE_FIELDS.items():
            if name in frame and not check(frame[name]):
                raise ProtocolError("a done frame with a bad %r" % name)
    nbytes = frame.get("nbytes")
    if nbytes is not None and (not _count(nbytes) or nbytes > max_blob):
        raise ProtocolError("a frame announcing %r bytes (at most %d)" % (nbytes, max_blob))
    if (frame["op"] == "put_blob") != (nbytes is not None or "file" in frame):
        raise ProtocolError("bytes where none belong, or none where they do: %s" % _sample(frame))
    return frame


def check_manifest(manifest):
    """A snapshot manifest as the worker builds it; the shas it may use are checked by the host."""
    variables = manifest.get("variables")
    fields = {
        "format": lambda value: value == MANIFEST_FORMAT,
        "pickler": _name,
        "python": _name,
        "values": _mapping(_sha),
        "meta": _sha,
        "blobs": lambda value: isinstance(value, list) and all(map(_sha, value)),
        "modules": _mapping(_name),
        "lost": _mapping(_name),
    }
    for name, check in fields.items():
        if not check(manifest.get(name)):
            raise ProtocolError("a snapshot manifest with a bad %r" % name)
    if not isinstance(variables, list) or not all(map(_variable, variables)):
        raise ProtocolError("a snapshot manifest with a bad variable list")
    return manifest


def manifest_blobs(manifest):
    """Every blob a manifest refers to."""
    return {manifest["meta"], *manifest["values"].values(), *manifest["blobs"]}


def _variable(row):
    return (
        isinstance(row, dict)
        and _name(row.get("name"))
        and _name(row.get("type"))
        and _optional(_count)(row.get("size"))
    )


def _sample(frame):
    return json.dumps(frame, default=str)[:120]
