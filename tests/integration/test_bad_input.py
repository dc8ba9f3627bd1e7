"""Every mistake a user can make gets one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import need_bwrap, run_rlm
from tests.openai_server import ScriptedOpenAIServer, is_root_call

LOCAL = ["--model", "openai/m", "--sub-model", "openai/m", "--api-base"]


def assert_one_line_error(done, *expected: str, code: int | None = None) -> None:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode != 0
    if code is not None:
        assert done.returncode == code
    assert "Traceback" not in done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    for text in expected:
        assert text in lines[0], lines[0]
    assert done.stdout == ""


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "ok.txt"
    path.write_text("hello")
    return path


def test_missing_context_file(tmp_path):
    done = run_rlm(
        ["run", "q", "--context", str(tmp_path / "nope.txt"), *LOCAL, "http://127.0.0.1:9/v1"], tmp_path
    )
    assert_one_line_error(done, "context file not found", "nope.txt", code=2)


def test_directory_without_text_files_as_context(tmp_path):
    (tmp_path / "empty").mkdir()
    done = run_rlm(
        ["run", "q", "--context", str(tmp_path / "empty"), *LOCAL, "http://127.0.0.1:9/v1"], tmp_path
    )
    assert_one_line_error(done, "has no text files", code=2)


def test_binary_context(tmp_path):
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)))
    done = run_rlm(["run", "q", "--context", str(binary), *LOCAL, "http://127.0.0.1:9/v1"], tmp_path)
    assert_one_line_error(done, "binary", code=2)


def test_unreadable_context(tmp_path):
    if os.geteuid() == 0:
        target = "/proc/self/mem"  # root reads any file; this one fails to read for everyone
    else:
        locked = tmp_path / "locked.txt"
        locked.write_text("secret")
        locked.chmod(0)
        target = str(locked)
    done = run_rlm(["run", "q", "--context", target, *LOCAL, "http://127.0.0.1:9/v1"], tmp_path)
    assert_one_line_error(done, "not readable" if os.geteuid() else "cannot be read", code=2)


def test_empty_question(tmp_path, text_file):
    done = run_rlm(["run", "   ", "--context", str(text_file)], tmp_path)
    assert_one_line_error(done, "question is empty", code=2)


def test_unknown_sandbox_flag_and_variable(tmp_path):
    done = run_rlm(["run", "q", "--sandbox", "vm"], tmp_path)
    assert_one_line_error(done, "--sandbox", "'vm'", code=2)
    done = run_rlm(["run", "q", *LOCAL, "http://127.0.0.1:9/v1"], tmp_path, env={"RLM_SANDBOX": "vm"})
    assert_one_line_error(done, "RLM_SANDBOX must be one of", "'vm'", code=2)


def test_bad_setting_values(tmp_path):
    assert_one_line_error(
        run_rlm(["run", "q", "--max-iterations", "many"], tmp_path), "max-iterations", code=2
    )
    assert_one_line_error(run_rlm(["run", "q", "--max-iterations", "0"], tmp_path), "greater than 0", code=2)
    done = run_rlm(["run", "q"], tmp_path, env={"RLM_CELL_TIMEOUT": "soon"})
    assert_one_line_error(done, "RLM_CELL_TIMEOUT", code=2)


def test_system_prompt_file_missing_or_with_an_unknown_placeholder(tmp_path, text_file):
    server = [*LOCAL, "http://127.0.0.1:9/v1"]
    missing = tmp_path / "nope.txt"
    done = run_rlm(
        ["run", "q", "-c", str(text_file), "--system-prompt-file", str(missing), *server], tmp_path
    )
    assert_one_line_error(done, f"system prompt file {missing}", "No such file", code=2)
    typo = tmp_path / "typo.txt"
    typo.write_text("Contexts: $contexts, steps: $max_steps, cost: $5")
    done = run_rlm(
        ["run", "q", "-c", str(text_file), *server], tmp_path, env={"RLM_SYSTEM_PROMPT_FILE": str(typo)}
    )
    assert_one_line_error(done, "'$' that starts no placeholder", code=2)
    typo.write_text("Contexts: $contexts, steps: $max_steps")
    done = run_rlm(
        ["run", "q", "-c", str(text_file), *server], tmp_path, env={"RLM_SYSTEM_PROMPT_FILE": str(typo)}
    )
    assert_one_line_error(
        done, "unknown placeholder $max_steps", "known: $contexts, $output_limit, $max_iterations", code=2
    )


def test_model_without_credentials(tmp_path, text_file):
    env = {key: "" for key in os.environ if key.endswith("_API_KEY")}
    done = run_rlm(
        [
            "run",
            "q",
            "--context",
            str(text_file),
            "--model",
            "openai/gpt-5",
            "--sub-model",
            "openai/gpt-5-mini",
        ],
        tmp_path,
        env={**env, "OPENAI_API_KEY": ""},
    )
    assert_one_line_error(done, "OPENAI_API_KEY", "--api-base", code=2)


def test_model_server_down_names_the_endpoint_and_what_to_check(tmp_path, text_file):
    need_bwrap()
    done = run_rlm(["run", "q", "--context", str(text_file), *LOCAL, "http://127.0.0.1:9/v1"], tmp_path)
    expected = ("root model call failed", "at http://127.0.0.1:9/v1: cannot connect", "--api-base", "network")
    assert_one_line_error(done, *expected, code=5)


def test_model_server_answering_garbage_then_resume_loses_nothing(tmp_path, text_file):
    need_bwrap()
    with ScriptedOpenAIServer(lambda messages: "", garbage=True) as server:
        done = run_rlm(
            ["run", "q", "--context", str(text_file), *LOCAL, server.url, "-q", "--thread", "g"], tmp_path
        )
    assert_one_line_error(done, "root model call failed", code=5)

    def model(messages):
        return "```repl\nFINAL(context)\n```" if is_root_call(messages) else "summary"

    with ScriptedOpenAIServer(model) as server:
        again = run_rlm(["run", "q", *LOCAL, server.url, "--thread", "g"], tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "hello"
    assert "resuming the unfinished question" in again.stderr


def test_bubblewrap_missing_names_the_fix(tmp_path, text_file):
    done = run_rlm(
        ["run", "q", "--context", str(text_file), *LOCAL, "http://127.0.0.1:9/v1"],
        tmp_path,
        env={"PATH": "/nonexistent"},
    )
    assert_one_line_error(done, "bubblewrap", "apt-get install bubblewrap", "--sandbox", code=2)


def test_unknown_command_and_missing_argument(tmp_path):
    assert_one_line_error(run_rlm(["bogus"], tmp_path), "No such command", code=2)
    assert_one_line_error(run_rlm(["run"], tmp_path), "Missing argument", code=2)
    assert_one_line_error(
        run_rlm(["status", "--thread", "never"], tmp_path), "no thread named 'never'", code=2
    )


def test_docker_daemon_down(tmp_path, text_file):
    done = run_rlm(
        ["run", "q", "--context", str(text_file), "--sandbox", "docker", *LOCAL, "http://127.0.0.1:9/v1"],
        tmp_path,
        env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )
    assert_one_line_error(done, "Docker is not reachable", "--sandbox local", code=2)


def test_e2b_without_a_key(tmp_path, text_file):
    done = run_rlm(
        ["run", "q", "--context", str(text_file), "--sandbox", "e2b", *LOCAL, "http://127.0.0.1:9/v1"],
        tmp_path,
        env={"E2B_API_KEY": "", "E2B_DEBUG": ""},
    )
    assert_one_line_error(done, "E2B_API_KEY is not set", code=2)
