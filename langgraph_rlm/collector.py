"""Garbage collection as a command's life needs it.

Importing LangGraph and LangChain builds about 120,000 objects that live as long as the process.
Collecting while they are made is wasted work (a tenth of a second of start-up); collections
during the run need not walk them again; and at exit, the interpreter's own collections over
them took longer than a whole question against a fast model (0.4 s).
"""

from __future__ import annotations

import gc


def importing() -> None:
    gc.disable()


def imported() -> None:
    """Whatever exists now lives on: it leaves the collector's sight, and collection resumes."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def exiting() -> None:
    gc.freeze()
