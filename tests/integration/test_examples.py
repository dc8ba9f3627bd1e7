"""The scenarios in examples/ run as the README shows them, and their expected answers follow
from the files: the scripted model here writes the program a model would, and the answer is what
that program computes in the REPL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import need_bwrap, run_rlm
from tests.openai_server import ScriptedOpenAIServer, is_root_call, last_question, root_step

EXAMPLES = Path(__file__).parents[2] / "examples"
SCENARIOS = json.loads((EXAMPLES / "scenarios.json").read_text())

PROGRAMS = {
    "When did the first timeout happen?": r"""
import re
FINAL(re.search(r"^(\S+) ERROR\s+\S+\s+timeout", context, re.M).group(1))
""",
    "How many ERROR lines are there?": """
errors = [line for line in context.splitlines() if " ERROR " in line]
FINAL(len(errors))
""",
    "How many of those are timeouts talking to db-2?": """
FINAL(sum("timeout talking to db-2" in line for line in errors))
""",
    "Which service logs the most errors?": """
from collections import Counter
FINAL(Counter(line.split()[2] for line in errors).most_common(1)[0][0])
""",
    "Which functions raise ValueError?": r"""
import re
found = []
for source in (context_0, context_1, context_2):
    for name, body in re.findall(r"^def (\w+)\(.*\n((?:    .*\n|\n)*)", source, re.M):
        if "raise ValueError" in body:
            found.append(name)
FINAL(", ".join(found))
""",
    "Which settings changed between the two versions?": """
import configparser
old, new = configparser.ConfigParser(), configparser.ConfigParser()
old.read_string(context_0)
new.read_string(context_1)
changes = []
for section in new.sections():
    for key, value in new[section].items():
        if not old.has_option(section, key):
            changes.append(f"{section}.{key} added: {value}")
        elif old[section][key] != value:
            changes.append(f"{section}.{key} {old[section][key]} -> {value}")
FINAL("; ".join(changes))
""",
}


def model(messages):
    if not is_root_call(messages):
        return "summary"
    if root_step(messages) == 0:
        return f"```repl\n{PROGRAMS[last_question(messages)].strip()}\n```"
    return "```repl\nprint('the answer is in')\n```"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_each_example_scenario_gives_its_expected_answers(tmp_path, scenario):
    need_bwrap()
    contexts = [arg for path in scenario["contexts"] for arg in ("--context", str(EXAMPLES / path))]
    with ScriptedOpenAIServer(model) as server:
        flags = ["--model", "openai/scripted", "--api-base", server.url, "--thread", "example"]
        for number, turn in enumerate(scenario["turns"]):
            done = run_rlm(["run", turn["question"], *(contexts if number == 0 else []), *flags], tmp_path)
            assert done.returncode == 0, done.stderr
            assert done.stdout.strip() == turn["expected"], turn["question"]
