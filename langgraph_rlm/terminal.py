"""Text that came from the sandbox or the model, shown without being obeyed.

An answer, a variable name or a cell's output is written by code the project treats as hostile:
as rich markup, `[/oops]` breaks a table; on a terminal, an escape sequence can retitle the
window, clear the screen or forge what the user reads. Everything the CLI shows passes through
here: never markup, and control characters as visible escapes (`\\x1b`). Only the answer on a
redirected stdout is written byte for byte, since there it is data, not display.
"""

from __future__ import annotations

import re
from typing import TextIO

from rich.text import Text

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""C0 but tab and newline, DEL, C1, and the bidirectional marks and overrides."""


def visible(text: str) -> str:
    """`text` with each control character as its Python escape, which a terminal only prints."""
    return CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


def literal(text: object, style: str = "") -> Text:
    """`text` for rich to render as it is: no markup read in it, its control characters visible."""
    return Text(visible(str(text)), style=style)


def write_answer(answer: str, stream: TextIO) -> None:
    """The answer and a newline: exact when redirected (`> answer.txt`), visible on a terminal.
    A character the stream cannot encode (a lone surrogate) is written as its escape."""
    text = (visible(answer) if stream.isatty() else answer) + "\n"
    stream.flush()
    stream.buffer.write(text.encode(stream.encoding or "utf-8", "backslashreplace"))
    stream.buffer.flush()
