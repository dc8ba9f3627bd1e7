"""Reading the root model's reply: the code it wants run, or an answer it gave in plain text."""

from __future__ import annotations

import ast
import re

CODE_BLOCK = re.compile(r"```[ \t]*\n?[ \t]*(?:repl|python|py)[ \t]*\n(.*?)```", re.DOTALL)
TEXT_FINAL = re.compile(r"^\s*(FINAL_VAR|FINAL)\((.*)\)\s*$", re.MULTILINE | re.DOTALL | re.IGNORECASE)


def code_blocks(text: str) -> list[str]:
    """The ```repl``` (or ```python```) blocks, in order, also with the tag on the fence's next
    line as small models write it; a FINAL written as text becomes code (in any case: small
    models write `Final(248)`)."""
    blocks = [block.strip("\n") for block in CODE_BLOCK.findall(text) if block.strip()]
    if blocks:
        return blocks
    match = TEXT_FINAL.search(text)
    if match is None:
        return []
    call, argument = match.group(1).upper(), match.group(2).strip()
    if call == "FINAL_VAR":
        return [f"FINAL_VAR({argument.strip(chr(34) + chr(39))!r})"]
    try:
        ast.parse(argument, mode="eval")
    except SyntaxError:
        return [f"FINAL({argument!r})"]
    return [f"FINAL({argument})"]


def without_code(text: str) -> str:
    """The prose of a reply, for when the model answers without calling FINAL."""
    return CODE_BLOCK.sub("", text).strip()


def clip(text: str, limit: int) -> str:
    """Head and tail of a long text, saying how much was left out."""
    if len(text) <= limit:
        return text
    head = limit // 2
    return f"{text[:head]}\n... [{len(text) - limit:,} characters omitted] ...\n{text[-(limit - head) :]}"
