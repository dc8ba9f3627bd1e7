"""Runs the step's code in the thread's sandbox, restored to this checkpoint's snapshot."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

from langgraph_rlm.graph.config import RLMSettings
from langgraph_rlm.graph.resources import resources_for
from langgraph_rlm.graph.state import RLMState
from langgraph_rlm.llm.budget import question_budget
from langgraph_rlm.llm.recursion import child_runner
from langgraph_rlm.llm.replies import code_blocks, without_code
from langgraph_rlm.llm.root_prompt import best_answer_chars
from langgraph_rlm.llm.subcalls import SubCallRouter
from langgraph_rlm.llm.tracing import step_run
from langgraph_rlm.llm.usage import add_usage
from langgraph_rlm.nodes.approval import Reviewed, review
from langgraph_rlm.prompts import render
from langgraph_rlm.sandboxes.session import CellResult

SHORT_REPLY = 200


async def execute(state: RLMState, config: RunnableConfig, runtime: Runtime[RLMSettings]) -> dict:
    started = time.monotonic()
    settings, emit = runtime.context, runtime.stream_writer
    if not state.pending_code:
        return {} if state.stop_reason else reply_without_code(state)
    reviewed = Reviewed(state.pending_code)
    if settings.approve_code or state.approve_code:
        reviewed = review(state.pending_code, state.iteration, state.review)
        if not isinstance(reviewed, Reviewed):
            return {"review": reviewed}
    if not reviewed.blocks:
        report = step_report([], reviewed, len(state.pending_code))
        return {"messages": [HumanMessage(report)], "pending_code": [], "review": None}
    resources = await resources_for(settings)
    router = SubCallRouter(
        settings.sub_model,
        api_base=settings.api_base,
        concurrency=settings.batch_concurrency,
        retries=settings.sub_call_retries,
        budget=question_budget(
            settings,
            state.usage,
            best_answer_chars(
                state.contexts, state.messages, settings, settings.output_limit * len(reviewed.blocks)
            ),
        ),
        depth=settings.depth,
        allowed_models=settings.model_names(),
        child_concurrency=settings.child_concurrency,
        child=child_runner(settings, state.session, resources),
        load_text=lambda sha: resources.blobs.get(sha).decode("utf-8", "replace"),
        emit=emit,
        cache=resources.sub_call_cache(settings, state.session),
        trace=step_run(config),
    )
    session = await resources.session(state.session, settings, state.contexts, state.repl.get("sandbox"))
    results: list[CellResult] = []
    quota = (settings.max_stored_mb << 20) - state.usage.get("stored_bytes", 0)
    stored = 0
    async with session.lock:
        await session.ensure(state.repl["snapshot"])
        spent = state.active_seconds + time.monotonic() - started  # the restore's time counts
        timeout = min(settings.cell_timeout, max(1.0, settings.max_time - spent))
        for code in reviewed.blocks:
            emit({"event": "code", "iteration": state.iteration, "code": code})
            result = await session.run(
                code,
                contexts=list(state.contexts),
                history=state.history,
                subcalls=router,
                timeout=timeout,
                output_limit=settings.output_limit,
                store_quota=quota - stored,
            )
            stored += result.stored_bytes
            emit(
                {
                    "event": "output",
                    "iteration": state.iteration,
                    "output": cell_report(result),
                    "snapshot_seconds": result.snapshot_seconds,
                }
            )
            results.append(result)
            if result.final is not None:
                break
    last = results[-1]
    report = step_report(results, reviewed, len(state.pending_code))
    if last.final is None:
        report = unless_repeated(report, state)
    return {
        "messages": [HumanMessage(report)],
        "repl": {"snapshot": last.snapshot, "variables": last.variables, "sandbox": session.sandbox_id},
        "answer": last.final,
        "limit_hit": router.budget.reached,
        "subcalls": router.log.written(),
        "pending_code": [],
        "review": None,
        "usage": (usage := add_usage(router.usage, {"stored_bytes": stored})),
        "total_usage": usage,
    }


def code_steps(state: RLMState) -> Iterator[tuple[tuple[str, ...], str]]:
    """This question's earlier cells, each with what the model was shown after it."""
    work = state.messages[state.turn_start + 1 : -1]
    for reply, shown in itertools.pairwise(work):
        if isinstance(reply, AIMessage) and (blocks := code_blocks(reply.text)):
            yield tuple(blocks), shown.text


def earlier_steps(state: RLMState) -> dict[tuple[str, ...], str]:
    """Each earlier cell with what the model was first shown of it."""
    steps: dict[tuple[str, ...], str] = {}
    for blocks, shown in code_steps(state):
        steps.setdefault(blocks, shown)
    return steps


def unless_repeated(report: str, state: RLMState) -> str:
    """A small model that is stuck sends the same cell again, often with a prose reply in
    between. Saying so breaks the loop more often than its output does, and the same output
    printed again only feeds the loop, so it is referred to rather than repeated."""
    before = earlier_steps(state).get(tuple(state.pending_code))
    if before is None:
        return report
    if before == report:
        report = "REPL output: the same as when this code ran before (above)."
    return report + "\n\n" + render("repeated")


def reply_without_code(state: RLMState) -> dict:
    """Before any code ran, a reply without code is a guess. After, it is mostly the answer in
    prose, which a small model wraps in FINAL when shown the exact line, and seldom otherwise;
    the same line sent again right after is the answer, as asking a third time only loops.
    Unless it holds a number no output showed: that was counted by eye or made up, and quoting
    it back as a FINAL line would end the task on it."""
    shown = [output for _, output in code_steps(state)]
    if not shown:
        return {"messages": [HumanMessage(render("no_code_yet"))]}
    replies = [m for m in state.messages[state.turn_start + 1 :] if isinstance(m, AIMessage)]
    said = one_line(replies[-1].text)
    if said is None:
        return {"messages": [HumanMessage(render("no_code"))]}
    if (number := unseen_number(said, shown)) is not None:
        return {"messages": [HumanMessage(render("no_code_unseen", number=number))]}
    if len(replies) > 1 and not code_blocks(replies[-2].text) and one_line(replies[-2].text) == said:
        return {"answer": said}
    return {"messages": [HumanMessage(render("no_code_short", final=f"FINAL({said!r})"))]}


def one_line(reply: str) -> str | None:
    said = without_code(reply)
    return said if said and "\n" not in said and len(said) <= SHORT_REPLY else None


def unseen_number(said: str, shown: list[str]) -> str | None:
    """The first number in `said` that none of the outputs shows as a token of its own: a count
    of 20 is not seen in "20:15", "2024-01-20" or "U0020"."""
    seen = "\n".join(shown)
    for word in said.split():
        token = word.strip("'\"`.,;:!?()[]{}")
        if not any(c.isdigit() for c in token):
            continue
        forms = {token, token.replace(",", "")}
        if not any(re.search(rf"(?<![\w.:/-]){re.escape(form)}(?![\w:/-]|[.,]\d)", seen) for form in forms):
            return token
    return None


def step_report(results: list[CellResult], reviewed: Reviewed, blocks: int) -> str:
    """What the model sees of its step; a block the user changed or refused says so in its output."""
    outputs = [f"{edit_note(reviewed, i)}{cell_report(r)}" for i, r in enumerate(results, 1)]
    if reviewed.rejected is not None and (not results or results[-1].final is None):
        later = " (and the blocks after it)" if reviewed.rejected < blocks else ""
        outputs.append(render("rejected", later=later, message=reviewed.message or "(none)"))
    if len(outputs) == 1 and blocks == 1:
        return "REPL output:\n" + outputs[0]
    return "\n\n".join(f"REPL output of block {i}:\n{output}" for i, output in enumerate(outputs, 1))


def edit_note(reviewed: Reviewed, block: int) -> str:
    if block not in reviewed.edited:
        return ""
    return f"(the user edited this block; it ran as:\n```repl\n{reviewed.blocks[block - 1]}\n```)\n"


def cell_report(result: CellResult) -> str:
    parts = []
    if result.stdout.strip():
        parts.append(result.stdout.rstrip())
    elif result.error is None and result.final is None:
        parts.append("(no output: print() what you want to see)")
    if result.stderr.strip():
        parts.append("stderr:\n" + result.stderr.rstrip())
    if result.error:
        parts.append(result.error)
    if result.dropped:
        names = ", ".join(f"{name} ({why})" for name, why in result.dropped.items())
        parts.append(f"Dropped while the REPL was restored (could not be loaded): {names}")
    if result.lost:
        names = ", ".join(f"{name} ({why})" for name, why in result.lost.items())
        parts.append(f"Not kept in the REPL snapshot (cannot be pickled; gone after a restart): {names}")
    if result.final is not None:
        parts.append("FINAL answer recorded.")
    return "\n".join(parts)
