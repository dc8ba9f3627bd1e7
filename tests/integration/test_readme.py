"""The README is a test: its shell commands run as written, as a newcomer types them.

The commands are found by parsing README.md, never listed here, so the test follows the README:
each ```bash block (a backslash or an open quote continues a line; `VAR=...` lines carry into
the block's later commands), the `$ ` lines of each ```text block (the rest of such a block is
what a real model printed once, not checked), the command column of the Examples table (its
follow-ups, `"question"` ... on `--thread t`, become `rlm run "question" --thread t`), and the
Development section's list items that begin with a command. Each block runs in order by bash
from a fresh directory holding a copy of examples/ (tests/user.py), with default settings; the
model is tests/readme_model.py's scripted server, named by RLM_MODEL / RLM_SUB_MODEL /
RLM_API_BASE, and bound to the port a block's `--api-base http://127.0.0.1:PORT` names. Every
command must exit 0; a table row's stdout must be the answer the README and
examples/scenarios.json state; a file named by `--html`, `--plot` or `--json` must be written.

A file the README names as a context that examples/ lacks (`big-dump.jsonl other.txt`,
`incidents.log`) stands for the reader's own data: the test writes a small one in the fresh
directory (a folder gets one file inside). Each `&&`-part of a command that is not an `rlm`
pipeline has a stated treatment in NOT_RUN_HERE, or the test fails:
test_every_readme_command_is_run_or_has_a_stated_treatment. The installing parts (a venv, its
activation, `pip install` of this project) run for real, in order, from a copy of the working
tree, in CI or with RLM_TEST_INSTALL=1: they download every dependency from PyPI.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import need_bwrap, unavailable
from tests.openai_server import ScriptedOpenAIServer
from tests.readme import (
    BLOCKS,
    SCENARIO_ANSWERS,
    Block,
    has_run_parts,
    is_assignment,
    named_inputs,
    named_port,
    parts,
    port_free,
    provide,
    runnable,
    treatment,
    words,
    written_files,
)
from tests.readme_model import readme_model
from tests.user import User


def test_the_readme_has_the_commands_this_test_runs():
    names = " ".join(block.name for block in BLOCKS)
    for section in ("Set up", "Examples", "Benchmarks for your model", "Try it with a local model"):
        assert section in names, f"no commands found in the README's {section!r} section"


def test_every_readme_command_is_run_or_has_a_stated_treatment():
    for block in BLOCKS:
        for command in block.commands:
            for part in parts(command.text):
                treatment(part)


@pytest.mark.parametrize("block", [b for b in BLOCKS if has_run_parts(b)], ids=lambda block: block.name)
def test_readme_commands_run_as_written(user: User, block: Block):
    need_bwrap()
    port = named_port(block)
    if port and not port_free(port):
        unavailable(f"port {port}, where the README's {block.name} commands expect their model, is in use")
    carried: list[str] = []
    with ScriptedOpenAIServer(readme_model, port=port) as server:
        user.use_model(server.url)
        for command in block.commands:
            text = runnable(command.text)
            if not text:
                continue
            if is_assignment(text):
                carried.append(text)
                continue
            for name in named_inputs(text):
                provide(user.cwd, name)
            done = user.shell("\n".join([*carried, text]), timeout=1800)
            assert done.returncode == 0, f"$ {command.text}\nexit {done.returncode}\n{done.stderr[-4000:]}"
            expected = (
                SCENARIO_ANSWERS.get(words(text)[2]) if block.name.startswith("Examples table") else None
            )
            for answer in {command.expected, expected} - {None}:
                assert done.stdout.strip() == answer, f"$ {command.text}\n{done.stderr[-2000:]}"
            for name in written_files(text):
                assert (user.cwd / name).is_file(), f"$ {command.text} wrote no {name}"


def test_readme_install_lines_give_a_working_rlm(readme_install: Path):
    """The README's install lines, run as written once per session (tests/conftest.py)."""
    done = subprocess.run([readme_install / "rlm", "--version"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert re.search(r"version \d", done.stdout), done.stdout
