"""A trajectory as one self-contained HTML page: no script at all, no fetch (its CSP forbids
both), long text folded with <details>. Every text from a model or a sandbox is hostile, so it
reaches the page only escaped."""

from __future__ import annotations

from functools import cache
from html import escape
from pathlib import Path
from string import Template

from langgraph_rlm.llm.replies import without_code
from langgraph_rlm.progress import cost_text, usage_line
from langgraph_rlm.trajectory.reader import Question, Trajectory
from langgraph_rlm.trajectory.records import CallRecord, StepRecord

FOLD_LINES = 15
FOLD_CHARS = 1_500
TIMELINE_CALLS = 8
LEGEND = "".join(
    f"<span><i class='bar {kind}'></i>{name}</span>"
    for kind, name in (("model", "root model"), ("repl", "REPL"), ("llm", "llm_query"), ("rlm", "child RLM"))
)


@cache
def _template() -> Template:
    return Template((Path(__file__).parent / "page.html").read_text())


def to_html(trajectory: Trajectory) -> str:
    questions = trajectory["questions"]
    head = (
        f"<h1>Thread {text(trajectory['thread'])}</h1>"
        f"<div class='meta'>{len(questions)} question{'s' * (len(questions) != 1)} · "
        f"{text(usage_line(trajectory['usage']))}</div>"
    )
    body = head + "".join(question_html(n, q) for n, q in enumerate(questions, 1))
    return _template().substitute(title=text(trajectory["thread"]), body=body)


def text(value: object) -> str:
    return escape(str(value), quote=True)


def pre(value: str, kind: str = "") -> str:
    return f"<pre class='{kind}'>{text(value)}</pre>"


def folded(label: str, value: str, kind: str = "") -> str:
    """Short text shown, long text behind its label."""
    lines = value.count("\n") + 1
    if lines <= FOLD_LINES and len(value) <= FOLD_CHARS:
        return f"<div class='label'>{text(label)}</div>{pre(value, kind)}"
    summary = f"<summary class='label'>{text(label)} ({lines:,} lines)</summary>"
    return f"<details>{summary}{pre(value, kind)}</details>"


def seconds(value: float | None) -> str:
    value = value or 0.0
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def question_html(number: int, question: Question) -> str:
    steps = question.get("steps", [])
    limits = [step["limit"] for step in steps if "limit" in step]
    meta = [
        f"{len(steps)} step{'s' * (len(steps) != 1)}",
        seconds(question.get("seconds")),
        f"ended by {question.get('stop_reason') or 'nothing yet (unfinished)'}",
        usage_line(question.get("usage", {})),
    ]
    if question.get("compactions"):
        meta.append(f"older steps summarised {question['compactions']}×")
    parts = [
        f"<section class='question'><h2>Q{number}. {text(question.get('question', ''))}</h2>",
        f"<div class='meta'>{text(question.get('started', '')[:19].replace('T', ' '))} UTC · "
        f"{text(' · '.join(meta))}</div>",
        timeline_html(steps, question.get("seconds") or 0.0),
        steps_html(steps),
    ]
    parts += [f"<p class='limit'>limit reached: {text(limit)}</p>" for limit in limits]
    answer = question.get("answer")
    if answer is not None:
        parts.append(f"<div class='answer'><div class='label'>Final answer</div>{pre(answer)}</div>")
    return "".join(parts) + "</section>"


def steps_html(steps: list[StepRecord]) -> str:
    return "".join(step_html(step) for step in steps)


def step_html(step: StepRecord) -> str:
    calls = step.get("calls", [])
    usage = step.get("usage", {})
    summary = (
        f"Step {step.get('step', '?')} · model {seconds(step.get('model_seconds'))} · "
        f"REPL {seconds(step.get('repl_seconds'))} · {len(calls) + step.get('calls_omitted', 0)} sub-calls · "
        f"{usage.get('input_tokens', 0):,} tokens in, {usage.get('output_tokens', 0):,} out · "
        f"{cost_text(usage)}"
    )
    parts = [f"<details class='step' open><summary>{text(summary)}</summary>"]
    if step.get("asked"):
        parts.append(folded("asked", step["asked"]))
    reasoning = without_code(step.get("reply", ""))
    if reasoning:
        parts.append(folded("reasoning", reasoning))
    for number, code in enumerate(step.get("code", []), 1):
        label = "code" if len(step.get("code", [])) == 1 else f"code block {number}"
        parts.append(folded(label, code, "code"))
    if "output" in step:
        parts.append(folded("output", step["output"]))
    if calls:
        parts.append(calls_html(calls, step.get("calls_omitted", 0)))
    if "limit" in step:
        parts.append(f"<p class='limit'>limit reached here: {text(step['limit'])}</p>")
    return "".join(parts) + "</details>"


def calls_html(calls: list[CallRecord], omitted: int) -> str:
    rows = []
    children = []
    for number, call in enumerate(calls, 1):
        kind = call.get("kind", "llm")
        spent = "from the cache" if call.get("cached") else cost_of(call)
        preview = f"→ {call.get('prompt', '').strip()}\n← {call.get('answer', '').strip()}"
        error = f"<div class='error'>{text(call['error'])}</div>" if call.get("error") else ""
        cells = [
            str(number),
            f"<span class='kind-{text(kind)}'>{'llm_query' if kind == 'llm' else 'rlm_query'}</span>",
            text(call.get("model", "")),
            str(call.get("depth", "")),
            f"{call.get('input_tokens', 0):,} / {call.get('output_tokens', 0):,}",
            text(spent),
            text(seconds(call.get("seconds"))),
        ]
        rows.append(
            "<tr>"
            + "".join(f"<td>{c}</td>" for c in cells)
            + f"<td class='preview'>{text(preview)}{error}</td></tr>"
        )
        if kind == "rlm" and "steps" in call:
            children.append(child_html(number, call))
    header = "".join(
        f"<th>{h}</th>"
        for h in ("#", "call", "model", "depth", "tokens in / out", "cost", "latency", "prompt → answer")
    )
    more = f"<div class='meta'>{omitted} more sub-calls not recorded in detail</div>" if omitted else ""
    return (
        f"<div class='label'>sub-calls</div><table class='calls'><tr>{header}</tr>{''.join(rows)}</table>"
        f"{more}{''.join(children)}"
    )


def child_html(number: int, call: CallRecord) -> str:
    steps = call.get("steps", [])
    summary = (
        f"child RLM #{number} · {call.get('model', '')} · depth {call.get('depth', '')} · "
        f"{len(steps)} step{'s' * (len(steps) != 1)} · {seconds(call.get('seconds'))} · "
        f"ended by {call.get('stop_reason') or 'an error'}"
    )
    return (
        f"<details class='child' open><summary>{text(summary)}</summary>"
        f"<div class='label'>asked</div>{pre(call.get('prompt', ''))}{steps_html(steps)}"
        f"<div class='label'>answer</div>{pre(call.get('answer', ''))}</details>"
    )


def cost_of(call: CallRecord) -> str:
    cost = call.get("cost")
    return "unknown" if cost is None else f"${cost:.6f}"


def timeline_html(steps: list[StepRecord], total: float) -> str:
    """Where the question's time went: each step's model call and REPL run, and the sub-calls
    inside the run, placed on one time axis."""
    end = max(
        [total, *(s.get("start", 0) + s.get("model_seconds", 0) + s.get("repl_seconds", 0) for s in steps)]
    )
    if not steps or end <= 0:
        return ""

    def row(name: str, kind: str, start: float, length: float) -> str:
        left, width = 100 * start / end, max(0.2, 100 * length / end)
        return (
            f"<div class='row'><span class='name'>{text(name)}</span><span class='track'>"
            f"<span class='bar {kind}' style='left:{left:.2f}%;width:{min(width, 100 - left):.2f}%' "
            f"title='{text(name)}: {text(seconds(length))}'></span></span></div>"
        )

    rows = []
    model_time = repl_time = calls_time = 0.0
    for step in steps:
        start, model = step.get("start", 0.0), step.get("model_seconds", 0.0)
        repl = step.get("repl_seconds", 0.0)
        model_time, repl_time = model_time + model, repl_time + repl
        number = step.get("step", "?")
        rows.append(row(f"step {number} · root model {seconds(model)}", "model", start, model))
        if repl:
            rows.append(row(f"step {number} · REPL {seconds(repl)}", "repl", start + model, repl))
        calls = step.get("calls", [])
        for call in calls[:TIMELINE_CALLS]:
            kind = call.get("kind", "llm")
            name = f"  {kind} {call.get('model', '')} {seconds(call.get('seconds'))}"
            rows.append(row(name, kind, start + model + call.get("start", 0.0), call.get("seconds", 0.0)))
        calls_time += sum(call.get("seconds", 0.0) for call in calls)
    spent = (
        f"root model {seconds(model_time)} · REPL {seconds(repl_time)} "
        f"(its sub-calls {seconds(calls_time)} summed, concurrent ones overlap)"
    )
    return (
        f"<div class='timeline'><div class='label'>timeline</div>{''.join(rows)}"
        f"<div class='legend'>{LEGEND}</div><div class='meta'>{text(spent)}</div></div>"
    )
