"""What `rlm bench` shows on stderr: which run is working and at which step (on a terminal), and
each run's verdict once it ends."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from langgraph_rlm.bench.sizes import size_label
from langgraph_rlm.terminal import literal


class RunProgress:
    def __init__(self, console: Console, name: str, runs: int, quiet: bool) -> None:
        self.console = console
        self.name = name
        self.runs = runs
        self.quiet = quiet
        self.where = ""
        self.status: Any = None

    def start(self, tokens: int, run: int) -> None:
        self.where = f"{self.name} {size_label(tokens)} run {run}/{self.runs}"
        if not self.quiet:
            self.status = self.console.status(literal(f"{self.where} · generating and starting"))
            self.status.start()

    def __call__(self, event: dict[str, Any]) -> None:
        """The graph's events: a long run says which step it is at."""
        if self.status is not None and event.get("event") == "step":
            self.status.update(literal(f"{self.where} · step {event['iteration']}"))

    def close(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def done(self, result: dict[str, Any]) -> None:
        self.close()
        if self.quiet:
            return
        verdict = ("right", "green") if result["correct"] else ("wrong", "red")
        detail = result["error"] or f"answer {result['answer'][:60]!r}, expected {result['expected']}"
        spent = f"{result['input_tokens'] + result['output_tokens']:,} tokens · {result['seconds']:.1f}s"
        line = Text.assemble(literal(self.where), ": ", verdict, " · ", literal(detail), " · ", spent)
        self.console.print(line, soft_wrap=True)
