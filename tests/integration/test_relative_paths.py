"""Relative paths as a newcomer types them: the default state dir `.rlm`, a relative `--state-dir`
or `RLM_STATE_DIR`, contexts and `--allow-dir` named from the working directory, on every sandbox;
and `rlm doctor` says ok only for a sandbox that really starts the way a run starts it."""

from __future__ import annotations

import os

import pytest

from tests.conftest import TEST_IMAGE, need_backend, need_e2b
from tests.openai_server import ScriptedOpenAIServer, is_root_call, last_question

SAMPLE = "examples/sample.log"


def model(messages):
    """The program a model would write for each question, against the REPL's real contents."""
    if not is_root_call(messages):
        return "summary"
    question = last_question(messages)
    if question.startswith("load "):
        return f"```repl\nload_file({question[5:]!r})\nFINAL(str(len(context)) + ' ' + peek(0, 20))\n```"
    return "```repl\nFINAL(str(len(context)))\n```"


def sandbox_flags(kind: str) -> tuple[list[str], dict[str, str]]:
    """The flags (and, for the E2B stand-in, the environment) a user of `kind` gives."""
    if kind == "docker":
        return ["--sandbox", "docker", "--docker-image", TEST_IMAGE], {}
    if kind == "e2b":
        stand_in = need_e2b()
        env = {k: v for k, v in os.environ.items() if k.startswith("E2B_")}
        return ["--sandbox", "e2b", "--e2b-workdir", stand_in.workdir()], {**env, "E2B_API_KEY": "e2b_test"}
    return ["--sandbox", kind], {}


@pytest.mark.parametrize("kind", ["local", "process", "docker", "e2b"])
def test_the_first_run_answers_with_the_default_state_dir(user, kind):
    need_backend(kind)
    flags, env = sandbox_flags(kind)
    size = len((user.cwd / SAMPLE).read_text())
    with ScriptedOpenAIServer(model) as server:
        user.use_model(server.url)
        done = user.run(["run", "How long is the log?", "--context", SAMPLE, *flags], env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(size)
    assert (user.cwd / ".rlm" / "threads.sqlite").is_file()


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_a_relative_state_dir_is_the_working_directorys(user, how):
    need_backend("local")
    flag, env = (["--state-dir", "kept"], {}) if how == "flag" else ([], {"RLM_STATE_DIR": "kept"})
    with ScriptedOpenAIServer(model) as server:
        user.use_model(server.url)
        done = user.run(["run", "How long is the log?", "--context", SAMPLE, *flag], env=env)
        listed = user.run(["threads", *flag], env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(len((user.cwd / SAMPLE).read_text()))
    assert (user.cwd / "kept" / "threads.sqlite").is_file() and not (user.cwd / ".rlm").exists()
    assert "default" in listed.stdout, listed.stderr


def test_load_file_reads_from_a_relative_allowed_folder(user):
    need_backend("local")
    question = "load examples/codebase/shop/cart.py"
    with ScriptedOpenAIServer(model) as server:
        user.use_model(server.url)
        done = user.run(["run", question, "--context", SAMPLE, "--allow-dir", "examples/codebase"])
    assert done.returncode == 0, done.stderr
    size = len((user.cwd / SAMPLE).read_text())
    assert done.stdout.strip() == f"{size} {(user.cwd / 'examples/codebase/shop/cart.py').read_text()[:20]}"


def test_doctor_reports_ok_only_when_a_run_works(user):
    need_backend("local")
    with ScriptedOpenAIServer(model) as server:
        user.use_model(server.url)
        doctor = user.run(["doctor"])
        run = user.run(["run", "How long is the log?", "--context", SAMPLE])
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    checks = doctor.stdout[doctor.stdout.index("┃ check") :].splitlines()
    assert any(line.startswith("│ local") and "│ ok" in line for line in checks)
    assert run.returncode == 0, run.stderr
    assert not list((user.cwd / ".rlm").glob("doctor-*")), "the doctor's probe file is left behind"


def test_doctor_fails_when_the_configured_sandbox_cannot_start(user):
    """A memory limit too small for the worker: the sandbox cannot start, for a run or the doctor."""
    need_backend("local")
    with ScriptedOpenAIServer(model) as server:
        user.use_model(server.url)
        doctor = user.run(["doctor", "--memory-limit", "1"])
        run = user.run(["run", "How long is the log?", "--context", SAMPLE, "--memory-limit", "1"])
    assert run.returncode != 0
    assert doctor.returncode == 1
    assert doctor.stderr.strip().splitlines() == ["error: not ready: local (see the table above)"]
    checks = doctor.stdout[doctor.stdout.index("┃ check") :]
    local = checks[checks.index("│ local") :].split("│ process")[0]
    assert "unavailable" in local and "install bubblewrap" not in local


def test_doctor_says_when_a_docker_image_is_absent_and_cannot_be_pulled(user):
    need_backend("docker")
    flags = ["--sandbox", "docker", "--docker-image", "rlm-no-such-image:never"]
    done = user.run(["doctor", *flags], env={"COLUMNS": "400"})
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["error: not ready: docker (see the table above)"]
    checks = done.stdout[done.stdout.index("┃ check") :]
    row = checks[checks.index("│ docker") :].splitlines()[0]
    assert "not here and could not be pulled" in row and "--docker-image" in row
