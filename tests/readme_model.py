"""The scripted model the README's commands run against: for each question the README asks, the
program a model would write, so that the answers the README states (examples/scenarios.json)
come out of the REPL; `rlm bench` tasks are solved the same way. A question the README asks
without stating an answer gets a fixed answer: the command's exit status is what is checked."""

from __future__ import annotations

import re
from typing import Any

from tests.integration.test_examples import PROGRAMS
from tests.openai_server import is_root_call, last_question, root_step

README_PROGRAMS = {
    **PROGRAMS,
    "And the last one?": r"""
import re
FINAL(re.findall(r"^(\S+) ERROR\s+\S+\s+timeout", context, re.M)[-1])
""",
}

BENCH_PROGRAMS = {
    r"What is the secret code\?": r"""
import re
FINAL(re.search(r"The secret code is (\d+)", context).group(1))
""",
    r"How many lines in the context have label=(\w+)\?": """
FINAL(context.count(" label={0} "))
""",
    r"Which label appears on the most lines": r"""
import re
from collections import Counter
FINAL(Counter(re.findall(r" label=(\w+) ", context)).most_common(1)[0][0])
""",
}

UNSTATED = 'FINAL("a scripted answer")'


def program(question: str) -> str:
    if question in README_PROGRAMS:
        return README_PROGRAMS[question]
    for pattern, code in BENCH_PROGRAMS.items():
        if found := re.search(pattern, question):
            return code.format(*found.groups())
    return UNSTATED


def readme_model(messages: list[dict[str, Any]]) -> str:
    """Root steps: the question's program, then (should the graph ask again) a look at the REPL.
    Sub-calls, turn summaries and `rlm doctor --models` get a short reply."""
    if not is_root_call(messages):
        return "ok"
    if root_step(messages) == 0:
        return f"```repl\n{program(last_question(messages)).strip()}\n```"
    return "```repl\nprint('the answer is in')\n```"
