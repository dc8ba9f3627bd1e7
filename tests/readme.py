"""The README's shell commands, parsed (tests/integration/test_readme.py runs them), and its
install lines run as written (the install every install test uses)."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from tests.user import EXAMPLES, clean_environment

REPOSITORY = Path(__file__).parents[1]
README = REPOSITORY / "README.md"
SCENARIO_ANSWERS = {
    turn["question"]: turn["expected"]
    for scenario in json.loads((EXAMPLES / "scenarios.json").read_text())
    for turn in scenario["turns"]
}

INSTALL = re.compile(
    r"python3? -m venv \S+|(\.|source) \S+/bin/activate"
    r"""|(python3? -m )?pip3? install (-e )?(\.|"\.\[[\w,]+\]")"""
)
NOT_RUN_HERE = {
    r"python3? -m pytest\b.*": "the test suite itself: run from inside itself it would recurse; CI runs it",
    r"bash \.ci/run": "CI's own script (installs system packages as root, then runs this suite)",
    r"python3? -m benchmarks\.\w+.*": "a measurement run from a clone (minutes to hours, 1 GB files, a "
    "PyPI venv for side_by_side); its numbers are kept in benchmarks/RESULTS.md",
    r"(sudo )?apt(-get)? install .*": "a system package: .ci/run installs them; a test needing one checks",
    r"git clone \S+( \S+)?": "the fresh directory (or the install test's copy of the tree) is the clone",
    r"cd \S+": "the directory a clone made; the fresh directory stands for it",
}
SHELL_TOOLS = {
    "rlm",
    "cat",
    "echo",
    "printf",
    "head",
    "tail",
    "wc",
    "grep",
    "gzip",
    "bzip2",
    "xz",
    "ls",
    "mkdir",
}
WRITTEN = ("--html", "--plot", "--json")
PORT = re.compile(r"(?:127\.0\.0\.1|localhost):(\d+)")


@dataclass(frozen=True)
class Command:
    text: str
    expected: str | None = None


@dataclass(frozen=True)
class Block:
    name: str
    commands: tuple[Command, ...]


def complete(text: str) -> bool:
    if text.endswith("\\"):
        return False
    try:
        shlex.split(text, comments=True)
    except ValueError:  # a quote still open: the line goes on
        return False
    return True


def logical_lines(lines: list[str]) -> list[str]:
    commands: list[str] = []
    current = ""
    for line in lines:
        current = f"{current}\n{line}" if current else line
        if complete(current):
            if current.strip() and not current.lstrip().startswith("#"):
                commands.append(current)
            current = ""
    return commands


def prompt_lines(text: str) -> list[str]:
    """The `$ ` lines of a transcript, with their continuation lines."""
    kept: list[str] = []
    going_on = False
    for line in text.splitlines():
        if line.startswith("$ ") or going_on:
            kept.append(line.removeprefix("$ "))
            going_on = line.endswith("\\")
    return kept


def spans(inline: Token) -> list[str]:
    return [child.content for child in inline.children or [] if child.type == "code_inline"]


def table_rows(tokens: list[Token], start: int) -> list[list[Token]]:
    """Each row's cells (their inline tokens) of the table opening at `start`, header first."""
    rows: list[list[Token]] = []
    for token in tokens[start:]:
        if token.type == "table_close":
            break
        if token.type == "tr_open":
            rows.append([])
        elif token.type == "inline":
            rows[-1].append(token)
    return rows


def row_commands(command_cell: Token, expected_cell: Token) -> tuple[Command, ...]:
    """`rlm ...` spans are commands; quoted-question spans after them, asked `on` the flags of
    the span that follows, are that command's follow-ups."""
    texts: list[str] = []
    questions: list[str] = []
    for span in spans(command_cell):
        if span.startswith("rlm "):
            texts.append(span)
        elif span.startswith('"'):
            questions.append(span)
        elif span.startswith("--"):
            texts += [f"rlm run {question} {span}" for question in questions]
            questions = []
    stated = spans(expected_cell)
    answers = stated if len(stated) == len(texts) else [None] * len(texts)
    return tuple(Command(text, answer) for text, answer in zip(texts, answers, strict=True))


def readme_blocks(markdown: str) -> list[Block]:
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    blocks: list[Block] = []
    section = ""
    counted: Counter[str] = Counter()
    for index, token in enumerate(tokens):
        lines: list[str] = []
        commands: tuple[Command, ...] = ()
        if token.type == "inline" and tokens[index - 1].type == "heading_open":
            section = token.content
        elif token.type == "fence" and token.info == "bash":
            lines = token.content.splitlines()
        elif token.type == "fence" and token.info == "text":
            lines = prompt_lines(token.content)
        elif (
            token.type == "inline" and tokens[index - 2].type == "list_item_open" and section == "Development"
        ):
            lines = spans(token)[:1] if token.children and token.children[0].type == "code_inline" else []
        elif token.type == "table_open":
            header, *rows = table_rows(tokens, index)
            names = [cell.content for cell in header]
            if "command" in names and "expected answer" in names:
                at, answer_at = names.index("command"), names.index("expected answer")
                for number, row in enumerate(rows):
                    blocks.append(
                        Block(f"{section} table row {number + 1}", row_commands(row[at], row[answer_at]))
                    )
        if lines:
            commands = tuple(Command(line) for line in logical_lines(lines))
        if commands:
            counted[section] += 1
            blocks.append(Block(f"{section} {counted[section]}", commands))
    return blocks


BLOCKS = readme_blocks(README.read_text())


def parts(command: str) -> list[str]:
    return [part.strip() for part in re.split(r"\s&&\s", command)]


def words(text: str) -> list[str]:
    return shlex.split(text.replace("\\\n", " "), comments=True)


def is_assignment(text: str) -> bool:
    found = words(text)
    return bool(found) and all(re.fullmatch(r"\w+=.*", word, re.S) for word in found)


def programs(part: str) -> list[str]:
    """The program of each stage of a pipeline, past its `VAR=value` prefixes."""
    found = []
    for stage in re.split(r"\s\|\s", part):
        names = [word for word in words(stage) if not re.fullmatch(r"\w+=.*", word, re.S)]
        found.append(names[0] if names else "")
    return found


def treatment(part: str) -> str | None:
    """Why `part` is not run in the fresh directory, or None when it is run there."""
    if is_assignment(part) or set(programs(part)) <= SHELL_TOOLS:
        return None
    if INSTALL.fullmatch(part) and ".[" in part:
        return "installs extras: .ci/run installs .[test], which holds them all, before the suite runs"
    if INSTALL.fullmatch(part):
        return "installs this project: the readme_install fixture runs it (tests/conftest.py)"
    for pattern, reason in NOT_RUN_HERE.items():
        if re.fullmatch(pattern, part, re.S):
            return reason
    pytest.fail(f"the README test does not know how to run {part!r}: run it or state why not (NOT_RUN_HERE)")


def runnable(command: str) -> str:
    """The parts of `command` run in the fresh directory, joined as written."""
    return " && ".join(part for part in parts(command) if treatment(part) is None)


def named_inputs(text: str) -> list[str]:
    """Files a command reads: its contexts (`-c`, `--context`, `rlm init`'s) and what `cat` reads."""
    found: list[str] = []
    for stage in re.split(r"\s(?:\||&&)\s", text):
        tokens = [word for word in words(stage) if not re.fullmatch(r"\w+=.*", word, re.S)]
        if tokens[:1] == ["cat"]:
            found += [word for word in tokens[1:] if not word.startswith("-")]
        if tokens[:2] == ["rlm", "init"]:
            for word in tokens[2:]:
                if word.startswith("-"):
                    break
                found.append(word)
        found += [tokens[i + 1] for i, word in enumerate(tokens[:-1]) if word in ("-c", "--context")]
    return [name for name in found if name != "-" and not name.startswith("$")]


def provide(cwd: Path, name: str) -> None:
    """The reader's own data the README names, as a small file made here."""
    path = cwd / name
    if path.exists():
        return
    if name.endswith("/"):
        path.mkdir(parents=True)
        path = path / "notes.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (
        json.dumps({"text": "a record of the reader's own"})
        if path.suffix == ".jsonl"
        else "the reader's notes"
    )
    path.write_text(line + "\n")


def written_files(text: str) -> list[str]:
    tokens = words(text)
    return [tokens[i + 1] for i, word in enumerate(tokens[:-1]) if word in WRITTEN and tokens[i + 1] != "-"]


def named_port(block: Block) -> int:
    ports = {int(port) for command in block.commands for port in PORT.findall(command.text)}
    assert len(ports) <= 1, f"{block.name} names several model servers: {ports}"
    return ports.pop() if ports else 0


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def has_run_parts(block: Block) -> bool:
    try:
        return any(runnable(command.text) for command in block.commands)
    except pytest.fail.Exception:  # unknown to the test: its block's test says so
        return True


def install_lines() -> list[str]:
    """The lines that install rlm for a user, extras left out: `.[test]` is the test command's
    own install, which CI runs as it runs the suite, and a named extra is what a user adds later."""
    return [
        part
        for block in BLOCKS
        for command in block.commands
        for part in parts(command.text)
        if INSTALL.fullmatch(part) and ".[" not in part
    ]


def install_as_written(root: Path) -> Path:
    """Runs the README's install lines in a copy of the working tree (what a clone holds) under
    `root`, so nothing outside it is touched whatever the lines do; returns the `bin` folder of
    the virtual environment they made."""
    lines = install_lines()
    assert lines, "the README says nowhere how to install rlm"
    venvs = [match.group(1) for line in lines if (match := re.fullmatch(r"python3? -m venv (\S+)", line))]
    assert len(venvs) == 1, f"the README's install lines make {len(venvs)} virtual environments: {lines}"
    clone = root / "langgraph-rlm"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPOSITORY,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (REPOSITORY / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            (clone / name).write_bytes((REPOSITORY / name).read_bytes())
    subprocess.run([sys.executable, "-m", "venv", root / "outer"], check=True)
    env = clean_environment(root)
    env["PATH"] = os.pathsep.join([str(root / "outer" / "bin"), "/usr/local/bin", "/usr/bin", "/bin"])
    script = " && ".join(lines)
    done = subprocess.run(
        ["bash", "-c", script], cwd=clone, env=env, capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, f"$ {script}\n{done.stderr[-4000:]}"
    return clone / venvs[0] / "bin"
