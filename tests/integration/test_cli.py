"""The `rlm` command as a user runs it: a subprocess, the real litellm HTTP path, bubblewrap."""

from __future__ import annotations

import hashlib
import re
import signal
import socket
import threading
from pathlib import Path

import pytest

from tests.conftest import containers_of, need_bwrap, run_rlm, start_rlm
from tests.openai_server import ScriptedOpenAIServer, is_root_call, last_question, root_step

SECRET = "SECRET-CODE-4242"


def model_flags(server: ScriptedOpenAIServer) -> list[str]:
    return ["--model", "openai/scripted", "--sub-model", "openai/scripted-sub", "--api-base", server.url]


@pytest.fixture(scope="module")
def haystack(tmp_path_factory) -> Path:
    """A generated 50 MB log with one needle two thirds of the way in."""
    path = tmp_path_factory.mktemp("data") / "haystack.log"
    line = "2026-11-23T10:00:00 INFO request served in 12ms from cache node-7\n"
    count = 50_000_000 // len(line)
    with open(path, "w") as out:
        for i in range(count):
            if i == count * 2 // 3:
                out.write(f"2026-11-23T10:00:00 WARN token {SECRET} rotated\n")
            out.write(line)
    return path


NEEDLE_STEPS = [
    "```repl\nprint(len(context))\nprint(peek(0, 200))\n```",
    "```repl\nspans = chunk_indices(size=1_000_000)\n"
    "prompts = [f'Reply with the SECRET-CODE in this text, or NONE.\\n{context[s:e]}' for s, e in spans]\n"
    "answers = llm_query_batched(prompts)\nfound = sorted({a for a in answers if a != 'NONE'})\nprint(len(spans), found)\n```",
    "```repl\nFINAL_VAR('found')\n```",
]


def needle_model(messages):
    if is_root_call(messages):
        return NEEDLE_STEPS[min(root_step(messages), len(NEEDLE_STEPS) - 1)]
    match = re.search(r"SECRET-CODE-\d+", messages[-1]["content"].split("\n", 1)[-1])
    return match.group(0) if match else "NONE"


def test_finds_a_needle_in_50_mb_through_batched_sub_calls(haystack, tmp_path):
    need_bwrap()
    with ScriptedOpenAIServer(needle_model) as server:
        done = run_rlm(
            [
                "run",
                "What is the secret code?",
                "--context",
                str(haystack),
                "--no-cache-sub-calls",
                *model_flags(server),
            ],
            tmp_path,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"['{SECRET}']"
    assert "step 2" in done.stderr and "sub-calls" in done.stderr
    sub_prompts = [r for r in server.log if not is_root_call(r["messages"])]
    assert len(sub_prompts) >= 50
    assert all(len(r["messages"][-1]["content"]) < 1_100_000 for r in server.log)
    assert "Traceback" not in done.stderr


PERSIST_FIRST = (
    "```repl\nimport collections, statistics\n"
    "def shout(text):\n    return text.upper() + '!'\n"
    "class Tally:\n    def __init__(self):\n        self.counts = collections.Counter()\n"
    "    def add(self, word):\n        self.counts[word] += 1\n        return self\n"
    "tally = Tally().add('a').add('a').add('b')\nsquare = lambda x: x * x\n"
    "FINAL('stored')\n```"
)
PERSIST_SECOND = (
    "```repl\nFINAL(f\"{shout('hi')} {tally.counts['a']} {type(tally).__name__} {square(7)} "
    '{statistics.mean([1, 2, 3])} {collections.__name__}")\n```'
)


def test_a_thread_survives_the_process_functions_classes_instances_and_modules(tmp_path, database):
    need_bwrap()
    context = tmp_path / "notes.txt"
    context.write_text("some notes\n")

    def model(messages):
        if not is_root_call(messages):
            return "summary of the turn"
        return PERSIST_FIRST if last_question(messages) == "remember things" else PERSIST_SECOND

    with ScriptedOpenAIServer(model) as server:
        flags = ["--thread", "t1", *database.flags, *model_flags(server)]
        first = run_rlm(["run", "remember things", "-c", str(context), *flags], tmp_path)
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip() == "stored"
        second = run_rlm(["run", "use them", *flags], tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "HI! 2 Tally 49 2 collections"
    last_root = [r for r in server.log if is_root_call(r["messages"])][-1]["messages"]
    assert any(m["content"] == "remember things" for m in last_root)


def test_init_then_status_then_run(tmp_path):
    need_bwrap()
    context = tmp_path / "data.txt"
    context.write_text("x" * 1234)
    init = run_rlm(["init", str(context), "--thread", "t2"], tmp_path)
    assert init.returncode == 0, init.stderr
    assert "context_0: data.txt (1,234 bytes)" in init.stderr
    again = run_rlm(["init", str(context), "--thread", "t2"], tmp_path)
    assert "0 new context(s)" in again.stderr

    steps = ["```repl\nn = len(context)\nprint(n)\n```", "```repl\nFINAL(n)\n```"]

    def model(messages):
        return steps[min(root_step(messages), 1)] if is_root_call(messages) else "summary"

    with ScriptedOpenAIServer(model) as server:
        done = run_rlm(["run", "how long is it?", "--thread", "t2", *model_flags(server)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1234"
    intro = f"thread t2 · openai/scripted at {server.url} · code runs in a local bubblewrap sandbox"
    assert done.stderr.splitlines()[0] == intro
    status = run_rlm(["status", "--thread", "t2"], tmp_path)
    assert status.returncode == 0, status.stderr
    assert "data.txt" in status.stdout and "1,234" in status.stdout
    assert re.search(r"n\s+│\s+int", status.stdout)
    assert "how long is it?" in status.stdout
    assert "2 root calls" in status.stdout or "3 root calls" in status.stdout
    by_model = re.search(r"│ 0\s+│ openai/\S*\s+│ (\d+)\s+│ [\d,]+\s+│ [\d,]+\s+│ (\S+)", status.stdout)
    assert by_model, status.stdout
    assert int(by_model[1]) == len(server.log) and by_model[2] == "unknown"


def test_chat_answers_each_line_and_keeps_the_thread(tmp_path):
    need_bwrap()

    def model(messages):
        if not is_root_call(messages):
            return "summary"
        question = last_question(messages)
        if question == "set it":
            return "```repl\nvalue = 41\nFINAL('set')\n```"
        return "```repl\nFINAL(value + 1)\n```"

    with ScriptedOpenAIServer(model) as server:
        done = run_rlm(
            ["chat", "--thread", "c1", *model_flags(server)],
            tmp_path,
            input="set it\nwhat is it plus one?\n/exit\n",
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["set", "42"]


def test_progress_can_be_silenced(tmp_path):
    need_bwrap()

    def model(messages):
        return "```repl\nFINAL('quiet')\n```" if is_root_call(messages) else "summary"

    with ScriptedOpenAIServer(model) as server:
        done = run_rlm(["run", "q", "--quiet", *model_flags(server)], tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "quiet"
    assert done.stderr.strip() == ""


def test_threads_lists_and_reset_forgets_and_collects_blobs(tmp_path, database):
    need_bwrap()
    kept_file, dropped_file = tmp_path / "kept.txt", tmp_path / "dropped.txt"
    kept_file.write_text("kept context")
    dropped_file.write_text("dropped context")
    db = database.flags
    assert run_rlm(["init", str(kept_file), "--thread", "keep", *db], tmp_path).returncode == 0

    def model(messages):
        return (
            "```repl\nnotes = ['a finding'] * 3\nFINAL('done')\n```" if is_root_call(messages) else "summary"
        )

    with ScriptedOpenAIServer(model) as server:
        flags = ["--thread", "drop", *db, *model_flags(server)]
        done = run_rlm(["run", "work", "-c", str(dropped_file), *flags], tmp_path)
    assert done.returncode == 0, done.stderr
    status = run_rlm(["status", "--thread", "drop", *db], tmp_path)
    assert "bytes beyond the contexts" in status.stdout and "notes" in status.stdout

    listed = run_rlm(["threads", *db], tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "keep" in listed.stdout and "drop" in listed.stdout and "work" in listed.stdout

    before = database.blob_shas(tmp_path)
    reset = run_rlm(["reset", "--thread", "drop", *db], tmp_path)
    assert reset.returncode == 0, reset.stderr
    after = database.blob_shas(tmp_path)
    assert hashlib.sha256(b"kept context").hexdigest() in after
    assert hashlib.sha256(b"dropped context").hexdigest() not in after
    assert len(before) - len(after) >= 4  # the context, the manifest, `notes` and the file registry
    assert "drop" not in run_rlm(["threads", *db], tmp_path).stdout
    gone = run_rlm(["status", "--thread", "drop", *db], tmp_path)
    assert gone.returncode == 2 and "no thread named 'drop'" in gone.stderr


def test_docker_sandbox_end_to_end_leaves_no_container(tmp_path):
    from tests.conftest import TEST_IMAGE, need_docker

    need_docker()
    import docker

    context = tmp_path / "data.txt"
    context.write_text("docker " * 1000)
    owners_seen = set()

    def model(messages):
        for container in docker.from_env().containers.list(filters={"label": "langgraph-rlm"}):
            owners_seen.add(container.labels["langgraph-rlm.host"])
        code = "import os\nFINAL(f'{len(context)} {os.getuid()} {open(\"/proc/1/cmdline\").read()[:11]}')"
        return f"```repl\n{code}\n```" if is_root_call(messages) else "summary"

    with ScriptedOpenAIServer(model) as server:
        flags = ["--sandbox", "docker", "--docker-image", TEST_IMAGE, *model_flags(server)]
        done = run_rlm(["run", "how long?", "-c", str(context), *flags], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "7000 65534 /sbin/docke"
    assert f"{socket.gethostname()}:{done.pid}" in owners_seen, "the run's container carries its owner"
    assert containers_of(done.pid) == []


def test_doctor_reports_sandboxes_and_credential_names_only(tmp_path):
    done = run_rlm(
        ["doctor"],
        tmp_path,
        env={
            "OPENAI_API_KEY": "sk-secret-value",
            "DOCKER_HOST": "unix:///nonexistent.sock",
            "E2B_API_KEY": "",
            "E2B_DEBUG": "",
        },
    )
    assert done.returncode == 0, done.stderr
    rows = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if line.count("│") >= 3}
    assert {"local", "process", "docker", "e2b"} <= set(rows)
    assert "unavailable" in rows["docker"] and "unavailable" in rows["e2b"]
    assert "OPENAI_API_KEY" in done.stdout and "sk-secret-value" not in done.stdout
    no_bwrap = run_rlm(["doctor"], tmp_path, env={"PATH": "/nonexistent"})
    local = next(line for line in no_bwrap.stdout.splitlines() if line.startswith("│ local"))
    assert "unavailable" in local


def test_doctor_models_sends_one_tiny_request_to_each_model_and_fails_when_one_does_not_answer(tmp_path):
    with ScriptedOpenAIServer(lambda messages: "OK") as server:
        done = run_rlm(["doctor", "--models", *model_flags(server)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.search(r"model openai/scripted answers\s+│ ok", done.stdout)
    assert re.search(r"sub-model openai/scripted-sub answers\s+│ ok", done.stdout)
    assert len(server.log) == 2 and all(entry["max_tokens"] == 5 for entry in server.log)

    dead = ["--model", "openai/m", "--sub-model", "openai/m", "--api-base", "http://127.0.0.1:9/v1"]
    down = run_rlm(["doctor", "--models", *dead], tmp_path)
    assert down.returncode == 1
    assert down.stderr.strip().splitlines() == [
        "error: not ready: model openai/m answers, sub-model openai/m answers (see the table above)"
    ]
    assert "cannot" in down.stdout and "RLM_API_BASE" in down.stdout


def test_doctor_fails_when_the_configured_sandbox_cannot_run(tmp_path):
    done = run_rlm(
        ["doctor", "--sandbox", "docker"], tmp_path, env={"DOCKER_HOST": "unix:///nonexistent.sock"}
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["error: not ready: docker (see the table above)"]


def test_e2b_sandbox_end_to_end_with_the_real_sdk(tmp_path):
    from tests.conftest import need_e2b

    workdir = need_e2b().workdir()
    context = tmp_path / "data.txt"
    context.write_text("e2b " * 2499 + "TAIL")

    def model(messages):
        if not is_root_call(messages):
            return "sub-answer"
        return "```repl\nFINAL(f'{len(context)} {llm_query(\"ping\")}')\n```"

    with ScriptedOpenAIServer(model) as server:
        flags = ["--sandbox", "e2b", "--e2b-workdir", workdir, *model_flags(server)]
        done = run_rlm(["run", "how long?", "-c", str(context), *flags], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "10000 sub-answer"
    from tests.conftest import _e2b_stand_in

    assert not [code for code in _e2b_stand_in[0].codes if "e2b TAIL" in code or "def run_cell" in code]
    uploaded = Path(workdir) / "repl_worker.py"
    assert (
        uploaded.read_bytes()
        == (Path(__file__).parents[2] / "langgraph_rlm/sandboxes/worker/repl_worker.py").read_bytes()
    )


def test_e2b_pause_keeps_the_sandbox_and_the_next_run_reconnects(tmp_path):
    from tests.conftest import need_e2b

    server_e2b = need_e2b()
    context = tmp_path / "big.txt"
    context.write_text("z" * 2_000_000)

    def model(messages):
        if not is_root_call(messages):
            return "summary"
        question = last_question(messages)
        code = "kept = len(context)\nFINAL('stored')" if question == "first" else "FINAL(kept + 1)"
        return f"```repl\n{code}\n```"

    with ScriptedOpenAIServer(model) as server:
        flags = ["--sandbox", "e2b", "--e2b-pause", "--e2b-workdir", server_e2b.workdir(), "--thread", "p"]
        flags += model_flags(server)
        key = {"E2B_API_KEY": "e2b_key_that_stays_on_the_host"}
        first = run_rlm(["run", "first", "-c", str(context), *flags], tmp_path, env=key)
        assert first.returncode == 0, first.stderr
        big_uploads = sum(1 for _, size in server_e2b.uploads if size == 2_000_000)
        assert big_uploads == 1 and server_e2b.paused
        second = run_rlm(["run", "second", *flags], tmp_path, env=key)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "2000001"
    assert not any("e2b_key_that_stays_on_the_host" in code for code in server_e2b.codes)
    assert sum(1 for _, size in server_e2b.uploads if size == 2_000_000) == 1, (
        "the context was uploaded again"
    )


def test_ctrl_c_exits_130_and_the_thread_resumes(tmp_path):
    need_bwrap()
    waiting, release = threading.Event(), threading.Event()

    def model(messages):
        if not is_root_call(messages):
            return "summary"
        if root_step(messages) == 0:
            return "```repl\nkept = 'still here'\n```"
        waiting.set()
        release.wait(60)
        return "```repl\nFINAL(kept)\n```"

    with ScriptedOpenAIServer(model) as server:
        args = ["run", "the question", "--thread", "c", *model_flags(server)]
        victim = start_rlm(args, tmp_path)
        try:
            assert waiting.wait(120), "the second step never reached the model"
            victim.send_signal(signal.SIGINT)
            _, stderr = victim.communicate(timeout=60)
        finally:
            victim.kill()
            release.set()
        assert victim.returncode == 130, stderr
        assert "interrupted" in stderr and "Traceback" not in stderr
        again = run_rlm(args, tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "still here"
    assert "resuming the unfinished question" in again.stderr
    assert [root_step(m) for m in server.received if is_root_call(m)] == [0, 1, 1]


def test_sub_call_retries_flag_retries_a_failing_sub_call(tmp_path):
    need_bwrap()
    attempts = []
    code = "try:\n    out = llm_query('flaky')\nexcept Exception as e:\n    out = type(e).__name__"

    def model(messages):
        if is_root_call(messages):
            return f"```repl\n{code}\n```" if root_step(messages) == 0 else "```repl\nFINAL(out)\n```"
        if messages[-1]["content"] == "flaky":
            attempts.append(1)
            if len(attempts) < 3:
                raise RuntimeError("temporarily overloaded")
            return "steady"
        return "summary"

    with ScriptedOpenAIServer(model) as server:
        retried = run_rlm(["run", "q", "--sub-call-retries", "2", *model_flags(server)], tmp_path)
        assert retried.returncode == 0, retried.stderr
        assert retried.stdout.strip() == "steady" and len(attempts) == 3
        attempts.clear()
        once = run_rlm(
            ["run", "q2", "--sub-call-retries", "0", "--thread", "o", *model_flags(server)], tmp_path
        )
    assert once.returncode == 0, once.stderr
    assert once.stdout.strip() == "LLMQueryError" and len(attempts) == 1


def test_flags_win_over_environment_variables(tmp_path):
    need_bwrap()

    def model(messages):
        if not is_root_call(messages):
            return "sub"
        if "reached its limit" in messages[-1]["content"]:
            return "best"
        return "```repl\nprint(llm_query('hi'))\n```"

    env = {"RLM_SUB_MODEL": "openai/from-env", "RLM_MAX_ITERATIONS": "1"}
    with ScriptedOpenAIServer(model) as server:
        base = ["--model", "openai/root", "--api-base", server.url, "--no-compact-turns"]
        from_env = run_rlm(["run", "q", "--thread", "env", *base], tmp_path, env=env)
        env_models = {r["model"] for r in server.log if not is_root_call(r["messages"])}
        server.log.clear()
        flags = ["--sub-model", "openai/from-flag", "--max-iterations", "2"]
        from_flags = run_rlm(["run", "q", "--thread", "flags", *base, *flags], tmp_path, env=env)
        flag_models = {r["model"] for r in server.log if not is_root_call(r["messages"])}
    assert from_env.returncode == 3 and from_flags.returncode == 3, from_env.stderr + from_flags.stderr
    assert env_models == {"from-env"} and "ended by max_iterations (1 steps)" in " ".join(
        from_env.stderr.split()
    )
    assert flag_models == {"from-flag"} and "ended by max_iterations (2 steps)" in " ".join(
        from_flags.stderr.split()
    )


def test_other_litellm_providers_go_through_litellm(tmp_path):
    """openai/... models take the direct HTTP path; any other provider still goes through litellm
    (hosted_vllm/ speaks the same protocol, so the local server answers it)."""
    need_bwrap()

    def model(messages):
        if not is_root_call(messages):
            return "sub says hi"
        return ["```repl\nx = llm_query('hello')\n```", "```repl\nFINAL(x)\n```"][min(root_step(messages), 1)]

    with ScriptedOpenAIServer(model) as server:
        flags = [
            "--model",
            "hosted_vllm/scripted",
            "--sub-model",
            "hosted_vllm/sub",
            "--api-base",
            server.url,
        ]
        done = run_rlm(["run", "q", *flags], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "sub says hi\n"
    assert [entry["model"] for entry in server.log][:2] == ["scripted", "sub"]
    assert "cost unknown for hosted_vllm/scripted, hosted_vllm/sub" in " ".join(done.stderr.split())
