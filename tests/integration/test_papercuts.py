"""The small things a newcomer hits in the first hour, each run as they would run it: the installed
`rlm` from a fresh directory with default settings, the model a scripted HTTP server."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.conftest import need_bwrap
from tests.openai_server import ScriptedOpenAIServer, is_root_call, last_question, root_step


def final(answer: str):
    def model(messages):
        if not is_root_call(messages):
            return "summary"
        return f"```repl\nFINAL({answer!r})\n```"

    return model


def root_calls(server: ScriptedOpenAIServer) -> list[list[dict]]:
    return [messages for messages in server.received if is_root_call(messages)]


def test_a_missing_provider_key_is_said_at_once_without_loading_litellm(user, tmp_path: Path):
    """litellm takes seconds to import; a newcomer without the key learns that in a blink. A
    litellm that cannot even be imported proves it is never loaded on this path."""
    poisoned = tmp_path / "poisoned"
    (poisoned / "litellm").mkdir(parents=True)
    (poisoned / "litellm" / "__init__.py").write_text("raise SystemExit('litellm was imported')\n")
    done = user.run(
        ["run", "Which service logs the most errors?", "--model", "anthropic/claude-sonnet-4-5"],
        env={"PYTHONPATH": str(poisoned)},
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("error: --model anthropic/claude-sonnet-4-5 needs ANTHROPIC_API_KEY"), lines
    assert "litellm was imported" not in done.stderr and "Traceback" not in done.stderr


def test_the_unknown_cost_warning_is_given_once_per_model(user):
    need_bwrap()
    with ScriptedOpenAIServer(final("ok")) as server:
        user.use_model(server.url)
        first = user.run(["run", "What is it?"])
        second = user.run(["run", "What is it now?", "--thread", "other"])
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "no price for openai/scripted" in first.stderr
    assert "--model-price" in first.stderr
    assert "no price for openai/scripted" not in second.stderr
    assert "cost unknown for openai/scripted" in " ".join(second.stderr.split())  # the summary says it


def test_max_cost_with_an_unpriced_model_says_the_cap_cannot_hold_before_the_run(user):
    need_bwrap()
    with ScriptedOpenAIServer(final("ok")) as server:
        user.use_model(server.url)
        done = user.run(["run", "What is it?", "--max-cost", "0.5"])
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if "cannot hold" in line]
    assert said and "openai/scripted" in said[0] and "--model-price" in said[0], done.stderr
    assert done.stderr.index("cannot hold") < done.stderr.index("step 1")


def test_a_given_price_makes_max_cost_hold(user):
    """Priced by the user at $10 per million tokens either way, a root step of the scripted model
    costs about a cent, so a 5-cent cap stops a model that never answers after a few steps."""
    need_bwrap()

    def never_done(messages):
        if not is_root_call(messages):
            return "summary"
        if "best answer" in str(messages[-1].get("content", "")).lower():
            return "FINAL('the best I have')"
        return f"```repl\nprint({root_step(messages)})\n```"

    with ScriptedOpenAIServer(never_done) as server:
        user.use_model(server.url)
        done = user.run(
            ["run", "What is it?", "--max-cost", "0.05", "--model-price", "openai/scripted=10,10"]
        )
        spent = sum(r["prompt_tokens"] + r["completion_tokens"] for r in server.log) * 10 / 1e6
    assert "limit reached: max_cost" in done.stderr, done.stderr
    assert "cannot hold" not in done.stderr and "no price" not in done.stderr
    assert 1 < len(root_calls(server)) < 30
    assert spent <= 0.05, spent
    assert "$0." in done.stderr and "cost unknown" not in done.stderr


def test_a_bad_model_price_is_one_line(user):
    done = user.run(["run", "What is it?", "--model-price", "openai/scripted=cheap"])
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --model-price openai/scripted=cheap: give MODEL=IN,OUT, "
        "dollars per million input and output tokens"
    ]
    from_env = user.run(["run", "What is it?"], env={"RLM_MODEL_PRICES": "a=1,2;b=3"})
    assert from_env.returncode == 2
    assert from_env.stderr.startswith("error: RLM_MODEL_PRICES b=3: give MODEL=IN,OUT"), from_env.stderr


def test_a_small_token_limit_still_makes_the_calls_that_fit(user):
    need_bwrap()
    with ScriptedOpenAIServer(final("small but answered")) as server:
        user.use_model(server.url)
        done = user.run(["run", "What is it?", "--max-tokens", "3000"])
    assert root_calls(server), done.stderr
    assert done.stdout.strip() == "small but answered" or "limit reached: max_tokens" in done.stderr


def test_threads_marks_unfinished_and_broken_threads_and_hides_benchmarks(user):
    need_bwrap()
    from tests.openai_server import HTTPFailure

    def model(messages):
        if not is_root_call(messages):
            return "summary"
        if last_question(messages) == "fail":
            raise HTTPFailure(400, "bad request")
        return "```repl\nFINAL('ok')\n```"

    with ScriptedOpenAIServer(model) as server:
        user.use_model(server.url)
        for thread, question in (("done", "q"), ("bench-niah-8-0", "q"), ("cut", "fail"), ("spoilt", "q")):
            user.run(["run", question, "--thread", thread, "--sub-call-retries", "0"])
    with sqlite3.connect(user.cwd / ".rlm" / "threads.sqlite") as db:
        db.execute("UPDATE checkpoints SET checkpoint = X'c1c1c1' WHERE thread_id = 'spoilt'")
    shown = user.run(["threads"])
    assert shown.returncode == 0, shown.stderr
    rows = {line.split()[1]: line for line in shown.stdout.splitlines() if line.startswith("│ ")}
    assert {"done", "cut", "spoilt"} <= set(rows) and "bench-niah-8-0" not in rows, shown.stdout
    assert "unfinished" in rows["cut"] and "unfinished" not in rows["done"]
    assert "broken" in rows["spoilt"] and "broken" not in rows["done"]
    assert str(user.cwd / ".rlm") in " ".join(shown.stdout.split()) or ".rlm" in shown.stdout
    assert "--all" in shown.stdout + shown.stderr
    everything = user.run(["threads", "--all"])
    assert "bench-niah-8-0" in everything.stdout


def test_chat_slash_commands_never_reach_the_model(user):
    need_bwrap()
    with ScriptedOpenAIServer(final("hello")) as server:
        user.use_model(server.url)
        lines = "\n".join(
            ["/help", "What is it?", "/status", "/trace", "/frobnicate", "/reset", "/status", "/quit"]
        )
        done = user.run(["chat"], input=lines + "\n", timeout=120)
        sent = [str(m.get("content")) for messages in server.received for m in messages]
    assert done.returncode == 0, done.stderr
    assert not [text for text in sent if text.lstrip().startswith("/")], sent
    assert len(root_calls(server)) == 1
    for command in ("/help", "/status", "/trace", "/reset", "/quit"):
        assert command in done.stderr, command
    assert "hello" in done.stdout
    assert "REPL variables" in done.stdout  # /status shows the thread as `rlm status` does
    written = next(line for line in done.stderr.splitlines() if "trace written to" in line)
    page = Path(written.split("trace written to", 1)[1].strip())
    assert page.is_file() and "What is it?" in page.read_text()
    assert sum("unknown command /frobnicate" in line for line in done.stderr.splitlines()) == 1
    assert "thread default reset" in done.stderr
    assert "no thread named 'default'" in done.stderr  # the second /status, after /reset


def test_chat_trace_takes_a_path(user):
    need_bwrap()
    with ScriptedOpenAIServer(final("hello")) as server:
        user.use_model(server.url)
        done = user.run(["chat"], input="What is it?\n/trace mine.html\n/exit\n", timeout=120)
    assert done.returncode == 0, done.stderr
    assert (user.cwd / "mine.html").is_file(), done.stderr


def test_a_long_single_line_output_is_clipped_in_the_progress_view(user):
    need_bwrap()

    def model(messages):
        if not is_root_call(messages):
            return "summary"
        if root_step(messages) == 0:
            return "```repl\nprint('x' * 1_000_000)\n```"
        return "```repl\nFINAL('done')\n```"

    with ScriptedOpenAIServer(model) as server:
        user.use_model(server.url)
        done = user.run(["run", "What is it?"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"
    assert len(done.stderr) < 5_000, len(done.stderr)
    assert "more characters" in done.stderr
