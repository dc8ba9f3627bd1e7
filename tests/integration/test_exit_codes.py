"""`rlm run`'s exit status says how the question ended, and stdout holds an answer or nothing:
a script can tell a FINAL answer from a best guess after a limit, from no answer at all, and
a model that is down from a sandbox that cannot start."""

from __future__ import annotations

import re
from pathlib import Path

from langgraph_rlm import cli
from tests.conftest import need_bwrap, need_docker
from tests.openai_server import ScriptedOpenAIServer, is_root_call

README = Path(__file__).parents[2] / "README.md"
LOOKS = "```repl\nprint(len(context))\n```"


def never_final(best: str):
    """A model that only looks, and answers `best` when told a limit was reached."""

    def respond(messages):
        if not is_root_call(messages):
            return "summary"
        return best if "reached its limit" in messages[-1]["content"] else LOOKS

    return respond


def test_a_best_answer_after_a_limit_is_on_stdout_with_a_status_of_its_own(user):
    need_bwrap()
    with ScriptedOpenAIServer(never_final("probably 42")) as server:
        user.use_model(server.url)
        done = user.run(["run", "How many?", "-c", "examples/sample.log", "--max-iterations", "1"])
    assert done.returncode == cli.EXIT_LIMIT == 3, done.stderr
    assert done.stdout == "probably 42\n"
    assert "max_iterations (1 steps)" in done.stderr.strip().splitlines()[-1]


def test_no_answer_leaves_stdout_empty_and_says_so_in_one_line(user):
    need_bwrap()
    with ScriptedOpenAIServer(never_final(LOOKS)) as server:
        user.use_model(server.url)
        done = user.run(["run", "How many?", "-c", "examples/sample.log", "--max-iterations", "1", "-q"])
    assert done.returncode == cli.EXIT_NO_ANSWER == 4, done.stderr
    assert done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: no answer") and "max_iterations" in line


def test_an_empty_final_answer_is_no_answer(user):
    need_bwrap()
    with ScriptedOpenAIServer(lambda messages: "```repl\nFINAL('  ')\n```") as server:
        user.use_model(server.url)
        done = user.run(["run", "Anything?", "-c", "examples/sample.log", "-q"])
    assert done.returncode == cli.EXIT_NO_ANSWER, done.stderr
    assert done.stdout == ""
    assert done.stderr.strip().startswith("error: no answer")


def test_a_model_that_cannot_be_reached_has_its_own_status(user):
    need_bwrap()
    user.env.update(
        {"RLM_MODEL": "openai/m", "RLM_SUB_MODEL": "openai/m", "RLM_API_BASE": "http://127.0.0.1:9/v1"}
    )
    done = user.run(["run", "How many?", "-c", "examples/sample.log", "--sub-call-retries", "0"])
    assert done.returncode == cli.EXIT_MODEL_FAILED == 5, done.stderr
    assert done.stdout == ""
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "127.0.0.1:9" in last and "Traceback" not in done.stderr


def test_a_sandbox_that_cannot_start_has_its_own_status(user):
    need_docker()
    with ScriptedOpenAIServer(lambda messages: "```repl\nFINAL(len(context))\n```") as server:
        user.use_model(server.url)
        args = ["--sandbox", "docker", "--docker-image", "rlm-test-no-such-image:none"]
        done = user.run(["run", "How long?", "-c", "examples/sample.log", *args])
    assert done.returncode == cli.EXIT_SANDBOX_FAILED == 6, done.stderr
    assert done.stdout == ""
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "rlm-test-no-such-image:none" in last


def test_the_readme_lists_every_exit_status():
    statuses = {name: value for name, value in vars(cli).items() if name.startswith("EXIT_")}
    passage = README.read_text().split("### Exit statuses", 1)[1].split("\n#", 1)[0]
    listed = {int(code) for code in re.findall(r"^\| `(\d+)` \|", passage, re.M)}
    assert listed == set(statuses.values()), passage
