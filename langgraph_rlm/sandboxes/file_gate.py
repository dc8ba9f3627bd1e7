"""Which host files the REPL may read: the contexts the user named and folders they allowed."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


class FileGate:
    """Paths are resolved when a file is asked for (symlinks and `..` included), never before,
    so building a gate touches no disk; `check` does, and runs off the event loop."""

    def __init__(self, files: Iterable[Path] = (), folders: Iterable[Path] = ()) -> None:
        self.files = set(map(Path, files))
        self.folders = list(map(Path, folders))

    def allow(self, paths: Iterable[Path]) -> None:
        self.files.update(map(Path, paths))

    def check(self, path: str) -> Path:
        """The real path of an allowed file; PermissionError for anything else."""
        real = Path(os.path.realpath(path))
        files = {Path(os.path.realpath(f)) for f in self.files}
        folders = [Path(os.path.realpath(d)) for d in self.folders]
        if real in files or any(real.is_relative_to(folder) for folder in folders):
            if not real.is_file():
                raise FileNotFoundError(f"{path}: no such file")
            return real
        raise PermissionError(
            f"{path} is not available to the REPL: only files given as contexts "
            "or under an allowed folder (--allow-dir) can be loaded"
        )
