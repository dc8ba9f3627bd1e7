"""The prompts, kept as text files beside this module so they can be read and edited as prose."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from string import Template


@cache
def _template(name: str) -> Template:
    return Template((Path(__file__).parent / f"{name}.txt").read_text())


def render(name: str, **values: object) -> str:
    return _template(name).substitute(values).strip()
