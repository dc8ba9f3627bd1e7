"""What the `rlm` command shows on stderr while a question is worked on."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from langgraph_rlm.llm.usage import Usage, unpriced
from langgraph_rlm.terminal import literal, visible

SANDBOX_NAMES = {
    "local": "a local bubblewrap sandbox",
    "docker": "a Docker container",
    "e2b": "an E2B cloud sandbox",
    "process": "a plain child process (no isolation)",
}


def intro(model: str, api_base: str | None, sandbox: str, thread: str) -> str:
    """What a run is about to do, said before anything slow happens."""
    where = SANDBOX_NAMES.get(sandbox, sandbox)
    return f"thread {thread} · {model} at {api_base or 'the provider'} · code runs in {where}"


CODE_LINES = 20
OUTPUT_LINES = 8
OUTPUT_SCREEN_LINES = 4
"""A cell's output is shown up to OUTPUT_LINES lines, and up to this many lines of the terminal:
one line of a megabyte is still a few lines here (the model sees its own share, output_limit)."""


def clipped(output: str, width: int) -> str:
    lines = output.splitlines() or [""]
    preview = "\n".join(lines[:OUTPUT_LINES])
    most = OUTPUT_SCREEN_LINES * max(width, 20)
    if len(preview) > most:
        return f"{preview[:most]}\n… {len(output) - most:,} more characters"
    if len(lines) > OUTPUT_LINES:
        return f"{preview}\n… {len(lines) - OUTPUT_LINES} more lines"
    return preview


def unpriced_models_file() -> Path:
    """In the user's cache dir: a price is a fact about a model, whichever project or store asks."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "rlm" / "unpriced-models"


def first_said(model: str) -> bool:
    """Whether the warning that litellm has no price for `model` is new to this user, noting it
    if so: said once per model, not on every run. Where nothing can be noted, it is said each time."""
    noted = unpriced_models_file()
    try:
        if model in noted.read_text().splitlines():
            return False
    except OSError:
        pass
    try:
        noted.parent.mkdir(parents=True, exist_ok=True)
        with noted.open("a") as file:
            file.write(model + "\n")
    except OSError:
        pass
    return True


class Progress:
    """Renders the graph's custom stream events; sub-calls are counted, not listed one by one."""

    def __init__(self, console: Console, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self.show_code = True
        self.running = 0
        self.done = 0
        self.cached = 0
        self.status: Any = None
        self.waiting: Any = None
        self.intro = ""
        self.started = time.monotonic()

    def begin(self, intro: str, keep: bool = True) -> None:
        """Loading and the first model call take seconds: on a terminal a spinner says at once what
        is about to happen, and the first event leaves `intro` as a line (`keep`). A run that fails
        first shows its one error line alone."""
        if not self.quiet:
            self.intro = intro if keep else ""
            self.waiting = self.console.status(f"{intro} · loading…")
            self.waiting.start()

    def close(self) -> None:
        if self.waiting is not None:
            self.waiting.stop()
            self.waiting = None

    def __call__(self, event: dict[str, Any]) -> None:
        if self.waiting is not None:
            self.close()
            if self.intro:
                self.console.print(literal(self.intro, "dim"), soft_wrap=True)
                self.intro = ""
        if self.quiet or not event:
            return
        handler = getattr(self, f"_on_{event.get('event')}", None)
        if handler is not None:
            handler(event)

    def _on_step(self, event: dict[str, Any]) -> None:
        blocks = len(event["blocks"])
        what = f"{blocks} code block{'s' * (blocks != 1)}" if blocks else "no code"
        self.console.rule(f"[bold cyan]step {event['iteration']}[/] · {what}", align="left")

    def _on_code(self, event: dict[str, Any]) -> None:
        if not self.show_code:
            return
        lines = event["code"].splitlines()
        shown = "\n".join(lines[:CODE_LINES]) + (
            f"\n# ... {len(lines) - CODE_LINES} more lines" if len(lines) > CODE_LINES else ""
        )
        from rich.syntax import Syntax  # pygments: loaded when code is first shown, not at start-up

        self.console.print(Syntax(visible(shown), "python", theme="ansi_dark", background_color="default"))

    def _on_output(self, event: dict[str, Any]) -> None:
        self._stop_status()
        self.console.print(literal(clipped(event["output"], self.console.width), "dim"))

    def _on_subcall(self, event: dict[str, Any]) -> None:
        if event["phase"] == "start":
            self.running += 1
        else:
            self.running -= 1
            self.done += 1
            self.cached += bool(event.get("cached"))
        text = f"sub-calls: {self.done} done, {self.running} running"
        if self.status is None:
            self.status = self.console.status(text)
            self.status.start()
        else:
            self.status.update(text)

    def _on_answer(self, event: dict[str, Any]) -> None:
        self._stop_status()

    def _on_summarising(self, event: dict[str, Any]) -> None:
        """The answer is out; the turn's summary, a model call, can take as long as a step."""
        self.waiting = self.console.status("summarising the turn…")
        self.waiting.start()

    def _on_limit(self, event: dict[str, Any]) -> None:
        self.console.print(literal(f"limit reached: {event['reason']}; asking for the best answer", "yellow"))

    def _on_compacted(self, event: dict[str, Any]) -> None:
        self.console.print(
            f"[dim]near the model's window: {event['messages']} earlier messages summarised[/]"
        )

    def _on_warning(self, event: dict[str, Any]) -> None:
        if event.get("unpriced") and not first_said(event["unpriced"]):
            return
        self.console.print(literal(f"warning: {event['message']}", "yellow"), soft_wrap=True)

    def _stop_status(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None
            cached = f" ({self.cached} from the cache)" if self.cached else ""
            self.console.print(f"[dim]{self.done} sub-calls answered{cached}[/]")
            self.done = self.cached = 0

    def finish(self, usage: Usage, stop_reason: str | None) -> None:
        self({})
        self._stop_status()
        if self.quiet:
            return
        elapsed = time.monotonic() - self.started
        self.console.print(
            literal(f"{usage_line(usage)} · {elapsed:.1f}s · ended by {stop_reason or 'an error'}", "dim")
        )


def usage_line(usage: Usage) -> str:
    hits = usage.get("cache_hits", 0)
    cached = f" (+{hits} from the cache)" if hits else ""
    return (
        f"{usage.get('root_calls', 0)} root calls, {usage.get('sub_calls', 0)} sub-calls{cached}, "
        f"{usage.get('input_tokens', 0):,} tokens in, {usage.get('output_tokens', 0):,} out, "
        f"{cost_text(usage)}"
    )


def cost_text(usage: Usage) -> str:
    """Dollars, and which models they leave out: a model litellm does not price is never $0."""
    unknown = unpriced(usage)
    if not unknown:
        return f"${usage.get('cost', 0.0):.4f}"
    priced = len(unknown) < len(usage.get("by_model", {})) and usage.get("cost", 0.0) > 0
    known = f"${usage.get('cost', 0.0):.4f} + " if priced else ""
    return f"{known}cost unknown for {', '.join(unknown)}"
