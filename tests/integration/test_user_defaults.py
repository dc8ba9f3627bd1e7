"""The defaults a user gets that the other fixtures set for convenience, each used by a test.

tests/conftest.py's `run_rlm` / `rlm_environment` start `python -m langgraph_rlm` from the
repository's root with an absolute RLM_STATE_DIR, LITELLM_LOCAL_MODEL_COST_MAP=True, the real
HOME, a pipe on stdin and pipes on stdout and stderr; the terminal tests add TERM and COLUMNS.
Where a user's default is covered (all through the `user` fixture, tests/user.py):

- the `rlm` console script, from a fresh working directory, a new HOME, no RLM_* / XDG_*
  variables, stdin /dev/null: every test using `user`, and the README's commands as written
  (test_readme.py);
- state dir `.rlm`, relative, in the working directory and nowhere else (the user's XDG cache
  and config may hold their own files):
  test_the_state_dir_is_dot_rlm_in_the_working_directory_and_nowhere_else;
- no LITELLM_LOCAL_MODEL_COST_MAP (the product sets it before litellm loads, so no download):
  test_litellm_loads_without_the_network_when_the_user_never_set_its_price_table_variable;
- stdout a pipe (the answer byte for byte) and a terminal (shown escaped), TERM set, the width
  from the terminal, no COLUMNS: test_the_answer_is_exact_through_a_pipe_and_escaped_on_a_terminal;
- stdin a terminal (neither waited for nor a context): test_a_terminal_on_stdin_is_not_read;
  a pipe and /dev/null: test_inputs.py's test_text_piped_in_is_the_context_and_no_pipe_means_no_context.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import need_bwrap
from tests.loopback import LoopbackServer, QuietHandler
from tests.openai_server import ScriptedOpenAIServer, is_root_call
from tests.readme_model import readme_model
from tests.user import User

FIRST_TIMEOUT = ["run", "When did the first timeout happen?", "-c", "examples/sample.log"]
ESCAPED_ANSWER = "\x1b[31mred\x1b[0m"


def files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file()}


def test_the_state_dir_is_dot_rlm_in_the_working_directory_and_nowhere_else(user: User):
    need_bwrap()
    before = files_under(user.cwd.parent)
    with ScriptedOpenAIServer(readme_model) as server:
        user.use_model(server.url)
        done = user.run(FIRST_TIMEOUT)
        listed = user.run(["threads"])
    assert done.returncode == 0, done.stderr
    assert done.stdout == "2026-11-01T02:32:00\n"
    state = user.cwd / ".rlm"
    assert (state / "threads.sqlite").is_file()
    assert list((state / "blobs").glob("??/*")), "the context is stored in .rlm/blobs"
    per_user = [user.home / name for name in (".cache", ".config", ".local")]
    elsewhere = [
        path
        for path in files_under(user.cwd.parent) - before
        if not any(folder in path.parents for folder in [state, *per_user])
    ]
    assert elsewhere == []
    assert [path for path in user.cwd.parent.rglob(".rlm") if path != state] == []
    assert listed.returncode == 0 and "default" in listed.stdout, listed.stderr


class RecordingProxy(LoopbackServer):
    """An HTTP(S) proxy that forwards nothing and remembers each request a process sent it."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        proxy = self

        class Handler(QuietHandler):
            def refuse(self) -> None:
                proxy.requests.append(self.requestline)
                self.reply(502, b"no network in this test", "text/plain")

            do_CONNECT = do_GET = do_POST = refuse

        super().__init__(Handler)


def test_litellm_loads_without_the_network_when_the_user_never_set_its_price_table_variable(user: User):
    """A provider other than openai/ goes through litellm, which downloads its price table when
    it is imported unless told not to; the user never tells it. A proxy for every host but the
    local model sees what the process tries to fetch."""
    need_bwrap()

    def model(messages):
        return "```repl\nFINAL('done')\n```" if is_root_call(messages) else "summary"

    with ScriptedOpenAIServer(model) as server, RecordingProxy() as proxy:
        user.use_model(server.url, model="hosted_vllm/scripted")
        proxied = {"HTTPS_PROXY": proxy.origin, "HTTP_PROXY": proxy.origin, "NO_PROXY": "127.0.0.1,localhost"}
        told = user.run(["run", "q"], env={**proxied, "LITELLM_LOCAL_MODEL_COST_MAP": "False"})
        assert told.returncode == 0, told.stderr
        assert any("githubusercontent" in request for request in proxy.requests), proxy.requests
        proxy.requests.clear()
        done = user.run(["run", "q", "--thread", "second"], env=proxied)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "done\n"
    assert proxy.requests == []


def test_the_answer_is_exact_through_a_pipe_and_escaped_on_a_terminal(user: User):
    need_bwrap()

    def model(messages):
        return f"```repl\nFINAL({ESCAPED_ANSWER!r})\n```" if is_root_call(messages) else "summary"

    with ScriptedOpenAIServer(model) as server:
        user.use_model(server.url)
        piped = user.run(["run", "colour?"])
        status, shown, _ = user.run_on_terminal(["run", "colour?", "--thread", "terminal"])
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == ESCAPED_ANSWER + "\n"
    assert status == 0, shown.decode(errors="replace")
    assert b"\\x1b[31mred\\x1b[0m" in shown
    assert ESCAPED_ANSWER.encode() not in shown


def test_a_terminal_on_stdin_is_not_read(user: User):
    """`rlm run "q" > answer.txt` typed at a prompt: stdin is the terminal, and the run neither
    waits for it nor takes it as a context."""
    need_bwrap()
    with ScriptedOpenAIServer(readme_model) as server:
        user.use_model(server.url)
        status, shown, stdout = user.run_on_terminal(FIRST_TIMEOUT, streams=("stdin", "stderr"), timeout=120)
    assert status == 0, shown.decode(errors="replace")
    assert stdout == b"2026-11-01T02:32:00\n"
    root_prompt = str(next(m for m in server.received if is_root_call(m))[0]["content"])
    listed = root_prompt.split("The contexts:\n", 1)[1].split("\n\n", 1)[0]
    assert [line.split(":")[0] for line in listed.splitlines()] == ["- context_0"], listed
