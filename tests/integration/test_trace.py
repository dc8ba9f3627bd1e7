"""`rlm trace`: a thread's trajectory, read from its checkpoints, as a web page and as JSON lines.

The page is rendered by a real browser (Debian's chromium, headless) and checked for what it shows.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.conftest import need_bwrap, run_rlm, unavailable
from tests.openai_server import ScriptedOpenAIServer, is_root_call, last_question, root_step

CHILD_QUESTION = "What is 6 times 7?"
FIRST_STEP = (
    "I will ask a sub-model for the colour and a child RLM for the product.\n"
    "```repl\ncolour = llm_query('Name the colour in: ' + context)\n"
    f"product = rlm_query({CHILD_QUESTION!r})\nprint(colour, product)\n```"
)
HOSTILE = (
    "</pre></details></script><script>document.title='pwned'</script>"
    "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"
)


def scripted(final: str):
    def model(messages):
        if not is_root_call(messages):
            return "summary" if "colour" not in messages[-1]["content"] else "teal"
        if last_question(messages) == CHILD_QUESTION:
            return "```repl\nFINAL(6 * 7)\n```"
        return [FIRST_STEP, final][min(root_step(messages), 1)]

    return model


def model_flags(server: ScriptedOpenAIServer) -> list[str]:
    return ["--model", "openai/scripted", "--sub-model", "openai/scripted-sub", "--api-base", server.url]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        unavailable("chromium is not installed (apt-get install chromium)")
    return found


def browse(page: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            *flags,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def asked_thread(tmp_path: Path, database, final: str) -> list[str]:
    """Runs one question with a sub-call and a child RLM; returns the flags that find its thread."""
    need_bwrap()
    context = tmp_path / "paint.txt"
    context.write_text("the wall is painted teal\n")
    flags = ["--thread", "paint", *database.flags]
    with ScriptedOpenAIServer(scripted(final)) as server:
        done = run_rlm(
            [
                "run",
                "What colour is the wall?",
                "-c",
                str(context),
                *flags,
                "--no-cache-sub-calls",
                *model_flags(server),
            ],
            tmp_path,
        )
    assert done.returncode == 0, done.stderr
    return flags


def test_trace_shows_steps_sub_calls_and_child_in_a_browser_and_exports_each_step_once(tmp_path, database):
    flags = asked_thread(tmp_path, database, "```repl\nFINAL(f'{colour}, and {product}')\n```")
    page, lines = tmp_path / "trace.html", tmp_path / "trace.jsonl"
    done = run_rlm(["trace", *flags, "--html", str(page), "--jsonl", str(lines)], tmp_path)
    assert done.returncode == 0, done.stderr

    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert [r["type"] for r in records] == ["thread", "question", "step", "step"]
    question, first, second = records[1:]
    assert question["question"] == "What colour is the wall?" and question["answer"] == "teal, and 42"
    assert question["stop_reason"] == "final" and question["usage"]["sub_calls"] == 2
    assert "llm_query(" in first["code"][0] and "FINAL(" in second["code"][0]
    assert first["output"].startswith("REPL output:\nteal 42")
    llm, child = first["calls"]
    assert (llm["kind"], llm["model"], llm["depth"], llm["answer"]) == (
        "llm",
        "openai/scripted-sub",
        1,
        "teal",
    )
    assert llm["input_tokens"] > 0 and llm["output_tokens"] > 0 and llm["seconds"] >= 0
    assert (child["kind"], child["model"], child["answer"], child["stop_reason"]) == (
        "rlm",
        "openai/scripted",
        "42",
        "final",
    )
    assert child["steps"][0]["code"] == ["FINAL(6 * 7)"] and child["input_tokens"] > 0
    assert lines.read_text().count(FIRST_STEP.splitlines()[0]) == 1, "a step is stored once"

    shown = browse(page, "--dump-dom")
    assert shown.returncode == 0, shown.stderr
    dom = shown.stdout
    for expected in (
        "What colour is the wall?",
        "colour = llm_query(",
        "openai/scripted-sub",
        "child RLM #2",
        "FINAL(6 * 7)",
        "teal, and 42",
        "timeline",
    ):
        assert expected in dom, expected
    assert "http://" not in page.read_text() and "https://" not in page.read_text()

    shot = tmp_path / "trace.png"
    taken = browse(page, f"--screenshot={shot}", "--window-size=1200,1500")
    assert taken.returncode == 0, taken.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_hostile_model_text_is_shown_not_run(tmp_path):
    from tests.conftest import Database

    flags = asked_thread(tmp_path, Database("sqlite"), f"Done. {HOSTILE}\n```repl\nFINAL({HOSTILE!r})\n```")
    page = tmp_path / "trace.html"
    done = run_rlm(["trace", *flags, "--html", str(page)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "<script" not in page.read_text() and "<img" not in page.read_text()
    dom = browse(page, "--dump-dom").stdout
    assert "<title>rlm trace: paint</title>" in dom
    assert "data-pwned" not in dom.split("<body", 1)[1].split(">", 1)[0]
    assert "<img" not in dom and "&lt;img src=x onerror=" in dom


def test_bad_trace_input_is_one_line_and_a_failure(tmp_path):
    from tests.conftest import Database

    asked_thread(tmp_path, Database("sqlite"), "```repl\nFINAL('x')\n```")
    for args, message in (
        (["--thread", "nowhere", "--html", str(tmp_path / "t.html")], "no thread named 'nowhere'"),
        (["--thread", "paint", "--html", str(tmp_path / "missing" / "t.html")], "cannot write"),
        (["--thread", "paint"], "give --html PATH"),
    ):
        done = run_rlm(["trace", *args], tmp_path)
        assert done.returncode != 0, args
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
