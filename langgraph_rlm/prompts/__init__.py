"""The prompts, kept as text files beside this module so they can be read and edited as prose; and
an operator's own system prompt, a text file with the same placeholders."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from string import Template

SYSTEM_PLACEHOLDERS = ("contexts", "output_limit", "max_iterations")


class PromptFileError(ValueError):
    """An operator's prompt file that cannot be used; the message is one line."""


@cache
def _template(name: str) -> Template:
    return Template((Path(__file__).parent / f"{name}.txt").read_text())


def render(name: str, **values: object) -> str:
    return _template(name).substitute(values).strip()


@cache
def system_template(path: str) -> Template:
    """Read once per process and checked whole, so a typo stops the run before its first model
    call rather than at a step, and no step reads the disk inside the event loop. Lines starting
    with # at the top are notes for people (where the prompt comes from) and are not sent."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines(keepends=True)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise PromptFileError(f"system prompt file {path}: {reason}") from None
    notes = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    template = Template("".join(lines[notes:]))
    if not template.is_valid():
        raise PromptFileError(
            f"system prompt file {path}: a '$' that starts no placeholder (write $$ for a dollar sign)"
        )
    unknown = sorted(set(template.get_identifiers()) - set(SYSTEM_PLACEHOLDERS))
    if unknown:
        known = ", ".join(f"${name}" for name in SYSTEM_PLACEHOLDERS)
        raise PromptFileError(
            f"system prompt file {path}: unknown placeholder {', '.join('$' + n for n in unknown)} "
            f"(known: {known})"
        )
    return template
