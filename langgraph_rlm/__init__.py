"""Recursive Language Models on LangGraph: the context lives in a sandboxed REPL, not the prompt."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_PUBLIC = {
    "build_rlm_graph": "langgraph_rlm.graph.builder",
    "close_sandboxes": "langgraph_rlm.graph.resources",
    "open_checkpointer": "langgraph_rlm.persistence.checkpointer",
    "RLMSettings": "langgraph_rlm.graph.config",
    "RLMInput": "langgraph_rlm.graph.state",
    "RLMOutput": "langgraph_rlm.graph.state",
    "RLMState": "langgraph_rlm.graph.state",
    "ThreadBusy": "langgraph_rlm.persistence.leases",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    """Public names load on first use, so the `rlm` command starts without building a graph."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'langgraph_rlm' has no attribute {name!r}")
    return getattr(import_module(_PUBLIC[name]), name)
