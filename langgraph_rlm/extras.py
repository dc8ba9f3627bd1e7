"""Optional parts of the install: the default path (a local bubblewrap sandbox, SQLite) needs
none of them, so a backend's library is imported only when that backend is chosen, and a missing
one is named in one line with the command that installs it."""

from __future__ import annotations

import importlib
from types import ModuleType

POSTGRES = "a PostgreSQL database (--db, RLM_DB)"


class MissingExtra(ImportError):
    """A chosen feature whose library is not installed; the message is one line for the user."""


def require(module: str, extra: str, feature: str) -> ModuleType:
    """`module`, imported; or MissingExtra naming `extra`, the pip extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = exc.name or module
        raise MissingExtra(
            f"{feature} needs the {extra!r} extra ({missing} is not installed): "
            f"pip install 'langgraph-rlm[{extra}]'"
        ) from None
