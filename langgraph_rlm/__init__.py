"""Recursive Language Models on LangGraph: the context lives in a sandboxed REPL, not the prompt."""

from langgraph_rlm.graph.builder import build_rlm_graph
from langgraph_rlm.graph.config import RLMSettings
from langgraph_rlm.graph.resources import close_sandboxes
from langgraph_rlm.graph.state import RLMInput, RLMOutput, RLMState

__all__ = ["RLMInput", "RLMOutput", "RLMSettings", "RLMState", "build_rlm_graph", "close_sandboxes"]
