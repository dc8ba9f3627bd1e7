"""The install a newcomer makes: the README's `pip install -e .`, with no extras, into a virtual environment of its
own. The default path (a local bubblewrap sandbox, SQLite) works there, and choosing a backend
whose extra is missing stops with one line that names the extra, never a traceback.

The environment is the one the README's install lines make, run as written once per test session
in a copy of the checkout (tests/readme.py), so a build leaves nothing in the checkout."""

from __future__ import annotations

import io
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.conftest import need_bwrap
from tests.openai_server import ScriptedOpenAIServer, is_root_call
from tests.user import User, new_user

OPTIONAL = ("docker", "e2b_code_interpreter", "psycopg", "langgraph.checkpoint.postgres", "pypdf")
COUNT_ERRORS = "```repl\nFINAL(sum(' ERROR ' in line for line in context.splitlines()))\n```"


@pytest.fixture
def newcomer(tmp_path: Path, readme_install: Path) -> User:
    """A user whose shell has the base install's virtual environment activated."""
    user = new_user(tmp_path)
    user.env["PATH"] = os.pathsep.join([str(readme_install), user.env["PATH"]])
    user.env["VIRTUAL_ENV"] = str(readme_install.parent)
    user.env["COLUMNS"] = "300"
    return user


def rlm(user: User, *args: str) -> subprocess.CompletedProcess:
    """`rlm ARGS` as typed in the user's shell, so the `rlm` found is the one on their PATH."""
    return user.shell(shlex.join(["rlm", *args]))


def model(messages):
    return COUNT_ERRORS if is_root_call(messages) else "summary"


def test_the_readme_install_has_no_optional_backend(readme_install: Path):
    for module in OPTIONAL:
        found = subprocess.run(
            [
                str(readme_install / "python"),
                "-c",
                f"import importlib.util as u; print(u.find_spec({module!r}))",
            ],
            capture_output=True,
            text=True,
        )
        assert found.stdout.strip() == "None", (module, found.stdout, found.stderr)


def test_the_default_path_runs_on_the_readme_install(newcomer: User):
    need_bwrap()
    log = (newcomer.cwd / "examples" / "sample.log").read_text()
    errors = sum(" ERROR " in line for line in log.splitlines())
    with ScriptedOpenAIServer(model) as server:
        newcomer.use_model(server.url)
        done = newcomer.shell('rlm run "How many ERROR lines are there?" --context examples/sample.log')
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(errors)


def pdf_file(folder: Path) -> str:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    data = io.BytesIO()
    writer.write(data)
    (folder / "report.pdf").write_bytes(data.getvalue())
    return "report.pdf"


CHOSEN = {
    "docker": ["--sandbox", "docker"],
    "e2b": ["--sandbox", "e2b"],
    "postgres": ["--db", "postgresql://postgres:rlm@127.0.0.1:5432/postgres"],
    "pdf": [],
}


@pytest.mark.parametrize("extra", CHOSEN)
def test_a_backend_without_its_extra_is_named_in_one_line(newcomer: User, extra: str):
    need_bwrap()
    context = pdf_file(newcomer.cwd) if extra == "pdf" else "examples/sample.log"
    with ScriptedOpenAIServer(model) as server:
        newcomer.use_model(server.url)
        done = rlm(newcomer, "run", "How many ERROR lines are there?", "--context", context, *CHOSEN[extra])
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"the {extra!r} extra" in lines[0]
    assert f"pip install 'langgraph-rlm[{extra}]'" in lines[0]


def test_the_database_extra_is_named_when_set_in_the_environment(newcomer: User):
    newcomer.env["RLM_DB"] = "postgresql://postgres:rlm@127.0.0.1:5432/postgres"
    done = rlm(newcomer, "threads")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "pip install 'langgraph-rlm[postgres]'" in done.stderr


def test_doctor_lists_a_backend_without_its_extra_as_unavailable(newcomer: User):
    done = rlm(newcomer, "doctor")
    rows = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if line.count("│") >= 3}
    for kind, extra in (("docker", "docker"), ("e2b", "e2b")):
        assert "unavailable" in rows[kind], done.stdout
        assert f"pip install 'langgraph-rlm[{extra}]'" in rows[kind], done.stdout
    assert "Traceback" not in done.stderr
