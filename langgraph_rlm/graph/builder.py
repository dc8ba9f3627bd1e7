"""The RLM graph, assembled in one place so it reads like its diagram:

    START -> start_turn -> generate_code -> execute -> check_final -> compact_memory -> END
                               ^    ^                       |             |
                               |    +----- next step -------+             |
                               +---- older steps summarised (mid-question) +

check_final goes to compact_memory when the answer is in, or when the next prompt would pass the
compaction threshold of the model's window; a reached limit first asks generate_code for a best answer;
while a person is still answering for the step's blocks (approve_code), back to execute to ask on.

In a trace the compiled graph's run is named RLM and each node's run records the state with the
conversation counted, not repeated (each root call's run keeps only what is new to it, see
llm.tracing), so a trace grows with the steps of a question, not with their square.
"""

from __future__ import annotations

import time
from dataclasses import fields, replace
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, TracePolicy

from langgraph_rlm.graph.config import RLMSettings
from langgraph_rlm.graph.entry import CompiledRLMGraph
from langgraph_rlm.graph.run_settings import RunContext, settings_for_run
from langgraph_rlm.graph.state import RLMInput, RLMOutput, RLMState
from langgraph_rlm.nodes.check_final import check_final
from langgraph_rlm.nodes.compact_memory import compact_memory
from langgraph_rlm.nodes.execute import execute
from langgraph_rlm.nodes.generate_code import generate_code
from langgraph_rlm.nodes.start_turn import start_turn
from langgraph_rlm.prompts import system_template

RECURSION_LIMIT = 200
GRAPH_NAME = "RLM"
COUNTED = ("messages", "history")


class RLMGraph(StateGraph):
    """Compiles to a graph named RLM unless told otherwise (LangGraph would call every graph's
    run "LangGraph", the root's and each child RLM's alike) that stores contexts sent as text
    where the builder's settings keep blobs, before it runs (see entry)."""

    text_store: tuple[str | None, str] = (None, ".rlm")
    thread_leases = True
    """Whether a run with a thread holds its lease (see entry); not where a server serialises them."""

    def compile(self, *args: Any, name: str | None = None, **kwargs: Any) -> CompiledStateGraph:
        compiled = super().compile(*args, name=name or GRAPH_NAME, **kwargs)
        compiled.__class__ = CompiledRLMGraph
        return compiled


def traced_state(state: RLMState) -> dict[str, Any]:
    """A node's input as its run records it (the node itself gets the whole state)."""
    shown = {f.name: getattr(state, f.name) for f in fields(state) if f.name not in COUNTED}
    return {**shown, **{name: f"{len(getattr(state, name))} entries" for name in COUNTED}}


TRACE_POLICY = TracePolicy(process_inputs=traced_state)


def build_rlm_graph(
    model: str | BaseChatModel | None = None,
    sub_model: str | BaseChatModel | None = None,
    *,
    settings: RLMSettings | None = None,
    **overrides: Any,
) -> RLMGraph:
    """The uncompiled RLM graph; compile it with the checkpointer of your choice.

    `model`, `sub_model` and `overrides` are the operator's settings (see RLMSettings); a run's
    `context` may choose among its models and lower its limits (see run_settings). A system prompt
    file that cannot be used raises PromptFileError here, before any run.
    """
    defaults = replace(settings or RLMSettings(), **overrides)
    if model is not None:
        defaults.model = model
    if sub_model is not None:
        defaults.sub_model = sub_model
    if defaults.system_prompt_file:
        system_template(defaults.system_prompt_file)

    def with_settings(node: Any) -> Any:
        async def run(state: RLMState, config: RunnableConfig, runtime: Runtime[Any]) -> Any:
            runtime = runtime.override(context=settings_for_run(defaults, runtime.context))
            started = time.monotonic()
            if node is start_turn:
                return await node(state, config, runtime)
            given = (state, config, runtime) if node is execute else (state, runtime)
            return with_active_time(await node(*given), time.monotonic() - started)

        run.__name__ = node.__name__
        return run

    graph = RLMGraph(RLMState, context_schema=RunContext, input_schema=RLMInput, output_schema=RLMOutput)
    graph.text_store = (defaults.db, defaults.state_dir)
    traced = {"trace_policy": TRACE_POLICY}
    graph.add_node("start_turn", with_settings(start_turn), **traced)
    graph.add_node("generate_code", with_settings(generate_code), **traced)
    graph.add_node("execute", with_settings(execute), **traced)
    graph.add_node(
        "check_final",
        with_settings(check_final),
        destinations=("execute", "generate_code", "compact_memory"),
        **traced,
    )
    graph.add_node(
        "compact_memory", with_settings(compact_memory), destinations=("generate_code", END), **traced
    )

    graph.add_edge(START, "start_turn")
    graph.add_edge("start_turn", "generate_code")
    graph.add_edge("generate_code", "execute")
    graph.add_edge("execute", "check_final")
    return graph


def with_active_time(result: Any, seconds: float) -> Any:
    """max_time counts the time nodes ran: not a pause at a breakpoint or an interrupt, nor the
    hours between a crash and its resume."""
    if isinstance(result, Command):
        return replace(result, update={**(result.update or {}), "active_seconds": seconds})
    return {**(result or {}), "active_seconds": seconds}


served = build_rlm_graph()
served.thread_leases = False
graph = served.compile().with_config(recursion_limit=RECURSION_LIMIT)
"""For langgraph.json: no checkpointer of its own, the server supplies one; settings from RLM_*.
The server runs a thread's runs one at a time itself (its multitask strategies), so the graph
takes no lease there."""
