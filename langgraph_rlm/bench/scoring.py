"""Whether an answer is right, forgiving the wording a model wraps around it but not a hedge:
an answer that names two candidates is wrong."""

from __future__ import annotations

import re

from langgraph_rlm.bench.tasks import Task


def is_correct(task: Task, answer: str) -> bool:
    if task.kind == "code":
        return re.search(rf"(?<!\d){re.escape(task.answer)}(?!\d)", answer) is not None
    if task.kind == "count":
        return [n.replace(",", "") for n in re.findall(r"\d[\d,]*", answer)] == [task.answer]
    named = set(re.findall(r"[a-z]+", answer.lower())) & set(task.choices)
    return named == {task.answer}
