"""Which host files the REPL may read: the contexts the user named and folders they allowed."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


class FileGate:
    def __init__(self, files: Iterable[Path] = (), folders: Iterable[Path] = ()) -> None:
        self.files = {Path(os.path.realpath(f)) for f in files}
        self.folders = [Path(os.path.realpath(d)) for d in folders]

    def allow(self, path: Path) -> None:
        self.files.add(Path(os.path.realpath(path)))

    def check(self, path: str) -> Path:
        """The real path of an allowed file; PermissionError for anything else."""
        real = Path(os.path.realpath(path))
        if real in self.files or any(real.is_relative_to(folder) for folder in self.folders):
            if not real.is_file():
                raise FileNotFoundError(f"{path}: no such file")
            return real
        raise PermissionError(
            f"{path} is not available to the REPL: only files given as contexts "
            "or under an allowed folder (--allow-dir) can be loaded"
        )
