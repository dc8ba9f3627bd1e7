"""The files a folder given as a context stands for: what `git add` would take from it. Hidden
files and folders, what a .gitignore (the folder's own or a nested one) excludes, and symbolic
links (which may lead outside what the user named) are left out."""

from __future__ import annotations

import os
from pathlib import Path

from pathspec import GitIgnoreSpec

IGNORE_FILE = ".gitignore"


def folder_files(root: Path) -> list[Path]:
    """Every such file under `root`, in a stable order. A deeper .gitignore decides before a
    shallower one, and an ignored folder is not entered, as in git."""
    specs: dict[Path, GitIgnoreSpec] = {}
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        if (spec := read_rules(here / IGNORE_FILE)) is not None:
            specs[here] = spec
        rules = [(base, specs[base]) for base in (here, *here.parents) if base in specs]
        dirs[:] = sorted(d for d in dirs if taken(here / d, rules, folder=True))
        found += [here / f for f in sorted(files) if taken(here / f, rules, folder=False)]
    return found


def taken(path: Path, rules: list[tuple[Path, GitIgnoreSpec]], folder: bool) -> bool:
    """`rules` run from the deepest .gitignore up."""
    if path.name.startswith(".") or path.is_symlink():
        return False
    for base, spec in rules:
        relative = path.relative_to(base).as_posix() + ("/" if folder else "")
        if (verdict := spec.check_file(relative).include) is not None:
            return not verdict
    return True


def read_rules(path: Path) -> GitIgnoreSpec | None:
    try:
        return GitIgnoreSpec.from_lines(path.read_text(encoding="utf-8", errors="replace").splitlines())
    except (FileNotFoundError, NotADirectoryError):
        return None
