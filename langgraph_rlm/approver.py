"""`--approve` on the terminal: each cell's code is shown before it runs, and the person
approves it, edits it or rejects it with a message to the model.

Answers are read without blocking the event loop, so Ctrl-C stops the command at the prompt as
it does anywhere else; the thread stays paused at that cell and asking again resumes there.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.syntax import Syntax
from rich.text import Text

from langgraph_rlm.terminal import literal, visible

END_OF_CODE = "."


class TerminalApprover:
    """Answers the graph's approval requests (see nodes/approval.py) from a terminal's stdin."""

    def __init__(self, console: Console, fd: int = 0) -> None:
        self.console = console
        self.fd = fd
        self.pending = b""

    async def __call__(self, request: dict[str, Any]) -> dict[str, str]:
        self.show(request)
        while True:
            answer = (await self.read_line("[a]pprove, [e]dit or [r]eject? ")).strip().lower()
            if answer in ("a", "approve"):
                return {"action": "approve"}
            if answer in ("r", "reject"):
                return {
                    "action": "reject",
                    "message": (await self.read_line("message to the model: ")).strip(),
                }
            if answer in ("e", "edit"):
                code = await self.edited(request["code"])
                if code.strip():
                    return {"action": "edit", "code": code}
                self.console.print(literal("the replacement is empty; the cell is unchanged", "yellow"))

    def show(self, request: dict[str, Any]) -> None:
        if request.get("error"):
            self.console.print(literal(f"asked again: {request['error']}", "yellow"))
        where = f"block {request['block']} of {request['blocks']}, step {request['iteration']}"
        self.console.rule(Text.assemble(("approve ", "bold magenta"), literal(where)), align="left")
        self.console.print(
            Syntax(
                visible(request["code"]),
                "python",
                theme="ansi_dark",
                background_color="default",
                line_numbers=True,
            )
        )

    async def edited(self, code: str) -> str:
        """The replacement from $VISUAL or $EDITOR, opened on the code; typed lines without one."""
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
        if not editor:
            self.console.print(
                literal(f"type the replacement code, then a line holding only {END_OF_CODE}", "dim")
            )
            lines: list[str] = []
            while (line := await self.read_line("")) != END_OF_CODE:
                lines.append(line)
            return "\n".join(lines)
        with tempfile.TemporaryDirectory(prefix="rlm-edit-") as folder:
            path = Path(folder) / "cell.py"
            path.write_text(code)
            process = await asyncio.create_subprocess_exec(*shlex.split(editor), str(path))
            if await process.wait() != 0:
                self.console.print(literal(f"{editor} exited with status {process.returncode}", "yellow"))
                return ""
            return path.read_text()

    async def read_line(self, prompt: str) -> str:
        """One line of stdin; EOFError at its end (Ctrl-D)."""
        self.console.print(literal(prompt, "bold"), end="")
        self.console.file.flush()
        while b"\n" not in self.pending:
            chunk = await self.read_chunk()
            if not chunk:
                if not self.pending:
                    raise EOFError
                break
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line.decode("utf-8", "replace")

    async def read_chunk(self) -> bytes:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        loop.add_reader(self.fd, lambda: ready.done() or ready.set_result(None))
        try:
            await ready
        finally:
            loop.remove_reader(self.fd)
        return os.read(self.fd, 65536)
