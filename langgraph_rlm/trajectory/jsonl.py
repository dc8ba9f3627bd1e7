"""A trajectory as JSON lines: the thread, then each question followed by its steps, each once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from langgraph_rlm.trajectory.reader import Trajectory


def records(trajectory: Trajectory) -> Iterator[dict[str, Any]]:
    questions = trajectory["questions"]
    yield {
        "type": "thread",
        "thread": trajectory["thread"],
        "questions": len(questions),
        "usage": trajectory["usage"],
    }
    for number, question in enumerate(questions, 1):
        steps = question.get("steps", [])
        yield {"type": "question", "question_number": number, **question, "steps": len(steps)}
        for step in steps:
            yield {"type": "step", "question_number": number, **step}


def to_jsonl(trajectory: Trajectory) -> str:
    return "".join(
        json.dumps(record, ensure_ascii=False, default=str) + "\n" for record in records(trajectory)
    )
