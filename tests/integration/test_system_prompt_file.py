"""An operator's own system prompt (e.g. the paper's, in benchmarks/prompts/) reaches the root
model in place of the built-in one, its placeholders filled and its notes left out."""

from __future__ import annotations

from pathlib import Path

import pytest

from langgraph_rlm import build_rlm_graph
from langgraph_rlm.prompts import PromptFileError, system_template
from tests.conftest import need_bwrap, run_rlm
from tests.openai_server import ScriptedOpenAIServer

PAPER_PROMPT = Path(__file__).parents[2] / "benchmarks" / "prompts" / "paper_system.txt"


def test_the_root_model_is_sent_the_file_with_its_placeholders_filled(tmp_path):
    need_bwrap()
    template = tmp_path / "prompt.txt"
    template.write_text(
        "# where this prompt comes from\nWrite repl blocks. Contexts:\n$contexts\n"
        "Steps: $max_iterations; output shown: $output_limit characters; price: $$0.\n"
    )
    notes = tmp_path / "notes.txt"
    notes.write_text("ERROR one\nINFO two\n")
    with ScriptedOpenAIServer(lambda messages: "```repl\nFINAL('done')\n```") as server:
        done = run_rlm(
            [
                "run",
                "How many errors?",
                "-c",
                str(notes),
                "--system-prompt-file",
                str(template),
                "--max-iterations",
                "7",
                "--output-limit",
                "5000",
                "--no-compact-turns",
                "--model",
                "openai/m",
                "--sub-model",
                "openai/m",
                "--api-base",
                server.url,
            ],
            tmp_path,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"
    system = server.log[0]["messages"][0]
    assert system["role"] == "system"
    assert system["content"] == (
        "Write repl blocks. Contexts:\n"
        "- context_0: str, 19 bytes, file notes.txt; starts with: 'ERROR one\\\\nINFO two\\\\n'\n"
        "Steps: 7; output shown: 5,000 characters; price: $0."
    )


def test_a_graph_built_with_a_missing_file_fails_before_any_run(tmp_path):
    with pytest.raises(PromptFileError, match=r"system prompt file .*nope\.txt"):
        build_rlm_graph("openai/m", "openai/m", system_prompt_file=str(tmp_path / "nope.txt"))


def test_the_papers_prompt_is_a_valid_template_whose_notes_are_not_sent():
    prompt = system_template(str(PAPER_PROMPT)).substitute(
        contexts="- context: str", output_limit=1, max_iterations=1
    )
    assert prompt.startswith("You are tasked with answering a query with associated context.")
    assert prompt.rstrip().endswith("Your context:\n- context: str")
