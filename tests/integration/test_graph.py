"""The graph end to end, in process: scripted models, the real bubblewrap sandbox, real checkpoints."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from langgraph_rlm import build_rlm_graph, close_sandboxes
from tests.conftest import need_bwrap
from tests.scripted_models import ScriptedChatModel, question_of, steps, until_limit


@pytest.fixture(autouse=True)
async def sandboxes():
    need_bwrap()
    yield
    await close_sandboxes()


def echo_sub() -> ScriptedChatModel:
    return ScriptedChatModel(respond=lambda messages: f"echo:{messages[-1].content[:20]}")


def compile_graph(root, tmp_path: Path, sub=None, checkpointer=None, **settings):
    graph = build_rlm_graph(root, sub or echo_sub(), state_dir=str(tmp_path / "state"), **settings)
    return graph.compile(checkpointer=checkpointer or InMemorySaver())


def config(thread: str = "t") -> dict:
    return {"configurable": {"thread_id": thread}, "recursion_limit": 200}


async def test_answer_usage_and_stop_reason_come_out(tmp_path):
    root = ScriptedChatModel(
        respond=steps("```repl\nx = len(context)\n```", "```repl\nFINAL(f'{x} chars')\n```")
    )
    graph = compile_graph(root, tmp_path)
    result = await graph.ainvoke({"query": "how long?", "contexts": ["abcdef"]}, config())
    assert result["answer"] == "6 chars"
    assert result["stop_reason"] == "final"
    assert result["usage"]["root_calls"] == 3  # two steps and the turn's summary
    assert set(result) == {"answer", "usage", "stop_reason"}


async def test_the_prompt_describes_contexts_but_never_contains_them(tmp_path):
    secret_middle = "MIDDLE-OF-THE-CONTEXT"
    context = "head " * 1000 + secret_middle + " tail" * 1000
    root = ScriptedChatModel(respond=steps("```repl\nFINAL('done')\n```"))
    graph = compile_graph(root, tmp_path)
    await graph.ainvoke({"query": "q", "contexts": [context]}, config())
    system = root.calls[0][0].content
    assert f"{len(context):,} bytes" in system and "context_0" in system
    assert secret_middle not in "".join(str(m.content) for m in root.calls[0])


async def test_blocks_run_in_order_and_the_first_final_wins(tmp_path):
    reply = (
        "```repl\nsteps = ['one']\n```\n"
        "```python\nsteps.append('two')\nFINAL(' '.join(steps))\n```\n"
        "```repl\nsteps.append('three')\nFINAL('too late')\n```"
    )
    root = ScriptedChatModel(respond=steps(reply, "```repl\nFINAL(str(steps))\n```"))
    graph = compile_graph(root, tmp_path)
    result = await graph.ainvoke({"query": "q"}, config())
    assert result["answer"] == "one two"
    state = await graph.aget_state(config())
    assert {"name": "steps", "type": "list", "size": 2} in state.values["repl"]["variables"]


async def test_a_reply_without_code_is_nudged(tmp_path):
    root = ScriptedChatModel(respond=steps("I think the answer is probably 4.", "```repl\nFINAL(2 + 2)\n```"))
    graph = compile_graph(root, tmp_path, compact_turns=False)
    result = await graph.ainvoke({"query": "2+2?"}, config())
    assert result["answer"] == "4"
    nudge = root.calls[1][-1].content
    assert "no ```repl``` block" in nudge and "not looked at the contexts yet" in nudge


async def test_a_prose_answer_after_looking_is_asked_for_as_final(tmp_path):
    long_prose = "The context is short. " * 10
    root = ScriptedChatModel(
        respond=steps("```repl\nlen(context)\n```", long_prose, "It has 8 characters.", "FINAL(8)")
    )
    graph = compile_graph(root, tmp_path, compact_turns=False)
    result = await graph.ainvoke({"query": "how long?", "contexts": ["abcdefgh"]}, config())
    assert result["answer"] == "8"
    general, quoted = (str(call[-1].content) for call in root.calls[2:4])
    assert "FINAL(answer)" in general and "not looked" not in general
    assert "reply with this line alone:\nFINAL('It has 8 characters.')\n" in quoted


async def test_a_one_line_answer_given_twice_after_looking_is_the_answer(tmp_path):
    root = ScriptedChatModel(
        respond=steps("```repl\nprint(len(context))\n```", "8", "8", "FINAL('never asked')")
    )
    graph = compile_graph(root, tmp_path, compact_turns=False)
    result = await graph.ainvoke({"query": "how long?", "contexts": ["abcdefgh"]}, config())
    assert (result["answer"], result["stop_reason"], len(root.calls)) == ("8", "final", 3)


async def test_a_number_no_output_showed_is_sent_back_to_be_computed(tmp_path):
    log = "20:15 ok\n20:16 ERROR disk\n20:17 ok\n20:18 ERROR net\n20:19 ERROR disk\n"
    root = ScriptedChatModel(
        respond=steps(
            "```repl\ngrep('ERROR', max_matches=2)\n```",
            "20",
            "20",
            "There are 1,000 errors.",
            "```repl\nFINAL(len(grep('ERROR')))\n```",
        )
    )
    graph = compile_graph(root, tmp_path, compact_turns=False)
    result = await graph.ainvoke({"query": "how many errors?", "contexts": [log]}, config())
    assert (result["answer"], len(root.calls)) == ("3", 5), "the guess was not taken, twice over"
    notes = [str(call[-1].content) for call in root.calls[2:5]]
    assert all("no REPL output so far shows" in note and "FINAL('" not in note for note in notes[:2])
    assert "shows 1,000," in notes[2]
    assert "grep: 3 matches in all; it returns only the first max_matches" in str(root.calls[1][-1].content)


async def test_a_number_the_output_showed_is_quoted_as_the_final_line(tmp_path):
    root = ScriptedChatModel(
        respond=steps("```repl\nprint(f'{len(context) * 250:,} bytes')\n```", "2,000", "FINAL(2000)")
    )
    graph = compile_graph(root, tmp_path, compact_turns=False)
    result = await graph.ainvoke({"query": "how big?", "contexts": ["abcdefgh"]}, config())
    assert result["answer"] == "2000"
    assert "FINAL('2,000')" in str(root.calls[2][-1].content)


async def test_a_guess_before_looking_is_not_taken_however_often_it_is_sent(tmp_path):
    root = ScriptedChatModel(respond=steps("7", "7", "```repl\nFINAL(len(context))\n```"))
    graph = compile_graph(root, tmp_path, compact_turns=False)
    result = await graph.ainvoke({"query": "how long?", "contexts": ["abcdefgh"]}, config())
    assert result["answer"] == "8"


async def test_the_print_hint_comes_only_when_a_cell_quietly_did_nothing(tmp_path):
    root = ScriptedChatModel(respond=steps("```repl\nx = 1\n```", "```repl\n1 / 0\n```", "FINAL(x)"))
    graph = compile_graph(root, tmp_path, compact_turns=False)
    assert (await graph.ainvoke({"query": "q"}, config()))["answer"] == "1"
    quiet, failed = (str(call[-1].content) for call in root.calls[1:])
    assert quiet == "REPL output:\n(no output: print() what you want to see)"
    assert failed.startswith("REPL output:\nTraceback") and "print()" not in failed


async def test_only_a_questions_first_step_is_told_to_look_first(tmp_path):
    root = ScriptedChatModel(respond=steps("```repl\nprint(peek(0, 3))\n```", "FINAL('abc')"))
    graph = compile_graph(root, tmp_path, compact_turns=False)
    for question in ("first?", "second?"):
        assert (await graph.ainvoke({"query": question, "contexts": ["abcdefgh"]}, config()))[
            "answer"
        ] == "abc"
    told = ["You have not looked" in str(call[-1].content) for call in root.calls]
    assert told == [True, False, True, False]
    assert [str(call[-2].content) for call in root.calls[::2]] == ["first?", "second?"]
    state = await graph.aget_state(config())
    assert not any("You have not looked" in str(m.content) for m in state.values["messages"])


async def test_the_same_cell_sent_again_is_pointed_out(tmp_path):
    stuck = "```repl\nprint(llm_query('find the code'))\n```"
    root = ScriptedChatModel(
        respond=steps("```repl\nprint(peek(0, 5))\n```", stuck, stuck, stuck, "FINAL(1)")
    )
    graph = compile_graph(root, tmp_path, compact_turns=False)
    result = await graph.ainvoke({"query": "q", "contexts": ["abcdefgh"]}, config())
    assert result["answer"] == "1"
    reports = [str(call[-1].content) for call in root.calls[1:]]
    assert ["already ran this exact code" in report for report in reports] == [
        False,
        False,
        True,
        True,
    ]
    assert reports[1].startswith("REPL output:\necho:find the code")
    assert all(r.startswith("REPL output: the same as when this code ran before") for r in reports[2:])


async def test_the_same_cell_sent_again_after_a_prose_reply_is_pointed_out(tmp_path):
    cell = "```repl\nprint(len(context))\n```"
    root = ScriptedChatModel(respond=steps(cell, "It has 8 characters.", cell, "FINAL(8)"))
    graph = compile_graph(root, tmp_path, compact_turns=False)
    assert (await graph.ainvoke({"query": "q", "contexts": ["abcdefgh"]}, config()))["answer"] == "8"
    reports = [str(call[-1].content) for call in root.calls[1:]]
    assert ["already ran this exact code" in report for report in reports] == [False, False, True]


async def test_final_written_as_text_is_taken(tmp_path):
    root = ScriptedChatModel(
        respond=steps("```repl\nresult = 'from the repl'\n```", "Done.\nFINAL_VAR(result)")
    )
    graph = compile_graph(root, tmp_path)
    result = await graph.ainvoke({"query": "q"}, config())
    assert result["answer"] == "from the repl"


async def test_max_iterations_asks_once_for_a_best_answer(tmp_path):
    root = ScriptedChatModel(
        respond=until_limit("```repl\nprint('still looking')\n```", "My best guess is 7.")
    )
    graph = compile_graph(root, tmp_path, max_iterations=3, compact_turns=False)
    result = await graph.ainvoke({"query": "q"}, config())
    assert result["answer"] == "My best guess is 7."
    assert result["stop_reason"].startswith("max_iterations")
    assert len(root.calls) == 4


async def test_best_answer_may_come_from_the_repl(tmp_path):
    respond = until_limit("```repl\npartial = 'half done'\n```", "```repl\nFINAL_VAR('partial')\n```")
    graph = compile_graph(ScriptedChatModel(respond=respond), tmp_path, max_iterations=2)
    result = await graph.ainvoke({"query": "q"}, config())
    assert result["answer"] == "half done"
    assert result["stop_reason"].startswith("max_iterations")


async def test_sub_call_limit_ends_the_run_and_fails_extra_calls(tmp_path):
    respond = until_limit(
        "```repl\nanswers = llm_query_batched([f'p{i}' for i in range(5)])\nprint(answers)\n```",
        "```repl\nFINAL(str(answers))\n```",
    )
    graph = compile_graph(ScriptedChatModel(respond=respond), tmp_path, max_sub_calls=3)
    result = await graph.ainvoke({"query": "q"}, config())
    assert result["stop_reason"].startswith("max_sub_calls")
    answers = eval(result["answer"])
    assert sum(a.startswith("echo:") for a in answers) == 3
    assert sum("sub-call limit" in a for a in answers) == 2


async def test_wall_clock_limit_cuts_a_slow_cell_and_ends_the_run(tmp_path):
    respond = until_limit("```repl\nimport time\ntime.sleep(600)\n```", "out of time")
    graph = compile_graph(ScriptedChatModel(respond=respond), tmp_path, max_time=5.0)
    result = await graph.ainvoke({"query": "q"}, config())
    assert result["answer"] == "out of time"
    assert result["stop_reason"].startswith("max_time")


async def test_time_paused_at_a_breakpoint_does_not_count_toward_max_time(tmp_path):
    replies = steps("```repl\nx = 1\n```", "```repl\nx += 1\n```", "```repl\nFINAL(x + 1)\n```")
    graph = build_rlm_graph(
        ScriptedChatModel(respond=replies), echo_sub(), state_dir=str(tmp_path / "s"), max_time=3.0
    )
    graph = graph.compile(checkpointer=InMemorySaver(), interrupt_before=["execute"])
    await graph.ainvoke({"query": "q"}, config())
    for _ in range(3):
        assert (await graph.aget_state(config())).next == ("execute",)
        await asyncio.sleep(2)
        result = await graph.ainvoke(None, config())
    assert (result["answer"], result["stop_reason"]) == ("3", "final")


async def test_unpicklable_names_are_reported_to_the_model(tmp_path):
    root = ScriptedChatModel(
        respond=steps(
            "```repl\nimport threading\nlock = threading.Lock()\nok = 1\n```", "```repl\nFINAL('x')\n```"
        )
    )
    graph = compile_graph(root, tmp_path)
    await graph.ainvoke({"query": "q"}, config())
    output = root.calls[1][-1].content
    assert "Not kept in the REPL snapshot" in output and "lock" in output


async def test_turn_compaction_keeps_question_and_exact_answer(tmp_path):
    long_answer = "line\n" * 2000
    root = ScriptedChatModel(
        respond=steps("```repl\nx = 1\n```", "```repl\nx += 1\n```", f"```repl\nFINAL({long_answer!r})\n```")
    )
    graph = compile_graph(root, tmp_path)
    await graph.ainvoke({"query": "the first question"}, config())
    messages = (await graph.aget_state(config())).values["messages"]
    assert len(messages) == 2
    assert messages[0].content == "the first question"
    assert messages[1].content.endswith(long_answer)
    assert "summary" in messages[1].content


async def test_clients_streaming_messages_see_each_question_once_and_no_summary(tmp_path):
    root = ScriptedChatModel(respond=steps("```repl\nx = 1\n```", "```repl\nFINAL(x)\n```"))
    graph = compile_graph(root, tmp_path)
    streamed = []
    for question in ("first question", "second question"):
        async for message, _ in graph.astream({"query": question}, config(), stream_mode="messages"):
            streamed.append(message)
    assert streamed and not any(m.content == "summary" for m in streamed), "the summariser's own reply"
    assert [m.content for m in streamed if m.type == "human"].count("first question") <= 1
    state = (await graph.aget_state(config())).values["messages"]
    humans = [m for m in state if m.type == "human"]
    assert [m.content for m in humans] == ["first question", "second question"]
    history = [s async for s in graph.aget_state_history(config())]
    asked = [m.id for s in history for m in s.values.get("messages", []) if m.content == "first question"]
    assert len(set(asked)) == 1, "the question kept one id through its turn's compaction"


async def test_a_failed_summary_keeps_the_turn(tmp_path):
    def respond(messages):
        if messages[0].type != "system":
            raise RuntimeError("summariser down")
        return steps("```repl\nx = 1\n```", "```repl\nFINAL('ok')\n```")(messages)

    graph = compile_graph(ScriptedChatModel(respond=respond), tmp_path)
    result = await graph.ainvoke({"query": "q"}, config())
    assert result["answer"] == "ok"
    assert len((await graph.aget_state(config())).values["messages"]) == 5


async def test_graph_state_keeps_references_not_context_text(tmp_path):
    context_file = tmp_path / "big.txt"
    context_file.write_text("0123456789" * 500_000)
    root = ScriptedChatModel(respond=steps("```repl\nn = len(context)\n```", "```repl\nFINAL(n)\n```"))
    db = tmp_path / "checkpoints.sqlite"
    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        graph = compile_graph(root, tmp_path, checkpointer=saver, path_contexts=True)
        result = await graph.ainvoke({"query": "length?", "contexts": [str(context_file)]}, config())
    assert result["answer"] == "5000000"
    with sqlite3.connect(db) as conn:
        stored = sum(len(row[0] or b"") for row in conn.execute("select checkpoint from checkpoints"))
        stored += sum(len(row[0] or b"") for row in conn.execute("select value from writes"))
    assert stored < 500_000


async def test_rlm_query_runs_a_child_rlm_with_its_own_sandbox(tmp_path):
    def respond(messages):
        question = next(m.content for m in messages if m.type == "human")
        if question.startswith("child:"):
            return "```repl\nFINAL(f'child saw {len(context)} chars')\n```"
        if any("REPL output" in str(m.content) for m in messages):
            return "```repl\nFINAL(reply)\n```"
        return "```repl\nreply = rlm_query('child: measure', context='x' * 1234)\n```"

    graph = compile_graph(ScriptedChatModel(respond=respond), tmp_path, max_depth=1)
    result = await graph.ainvoke({"query": "parent"}, config())
    assert result["answer"] == "child saw 1234 chars"
    assert result["usage"]["root_calls"] >= 4


async def test_at_the_depth_limit_rlm_query_is_a_plain_sub_call(tmp_path):
    root = ScriptedChatModel(
        respond=steps(
            "```repl\nreply = rlm_query('question', context='ctx')\n```", "```repl\nFINAL(reply)\n```"
        )
    )
    graph = compile_graph(root, tmp_path, max_depth=0)
    result = await graph.ainvoke({"query": "q"}, config())
    assert result["answer"] == "echo:question\n\nctx"


async def test_a_second_turn_adds_a_context_and_sees_history(tmp_path):
    def respond(messages):
        question = [m.content for m in messages if m.type == "human" and not m.content.startswith("REPL")][-1]
        if question == "first":
            return "```repl\nFINAL('answer one ' * 3)\n```"
        return "```repl\nFINAL(f\"{len(context_1)} {history[0]['question']} {history[0]['answer']!r}\")\n```"

    graph = compile_graph(ScriptedChatModel(respond=respond), tmp_path)
    await graph.ainvoke({"query": "first", "contexts": ["alpha"]}, config())
    result = await graph.ainvoke({"query": "second", "contexts": ["beta-gamma"]}, config())
    assert result["answer"] == "10 first 'answer one answer one answer one '"
    state = await graph.aget_state(config())
    assert [c["name"] for c in state.values["contexts"]] == ["context_0", "context_1"]
    assert [turn["question"] for turn in state.values["history"]] == ["first", "second"]


async def test_a_long_question_never_overflows_a_small_window(tmp_path):
    from langchain_core.messages.utils import count_tokens_approximately

    window, sizes, summaries = 3000, [], []

    def respond(messages):
        sizes.append(count_tokens_approximately(messages))
        if messages[0].type != "system":
            summaries.append(messages)
            return "x counts the steps so far; nothing found yet."
        if "reached its limit" in str(messages[-1].content):
            return "```repl\nFINAL(x)\n```"
        return "```repl\nx = globals().get('x', 0) + 1\nprint('step', x, 'padding ' * 40)\n```"

    graph = compile_graph(
        ScriptedChatModel(respond=respond),
        tmp_path,
        max_iterations=60,
        context_window=window,
        compact_turns=False,
    )
    result = await graph.ainvoke(
        {"query": "count"}, {"configurable": {"thread_id": "long"}, "recursion_limit": 400}
    )
    assert result["answer"] == "60"
    assert result["stop_reason"].startswith("max_iterations")
    assert len(summaries) >= 3
    assert max(sizes) <= window
    state = await graph.aget_state({"configurable": {"thread_id": "long"}})
    assert state.values["messages"][0].content == "count"


async def test_rlm_query_batched_runs_a_child_per_prompt(tmp_path):
    def respond(messages):
        question = next(m.content for m in messages if m.type == "human")
        if question.startswith("child:"):
            return f"```repl\nFINAL({question!r} + ' saw ' + str(len(context)))\n```"
        if any("REPL output" in str(m.content) for m in messages):
            return "```repl\nFINAL(str(replies))\n```"
        return "```repl\nreplies = rlm_query_batched(['child: a', 'child: b'], ['xx', 'yyyy'])\n```"

    graph = compile_graph(ScriptedChatModel(respond=respond), tmp_path, max_depth=1)
    result = await graph.ainvoke({"query": "parent"}, config())
    assert eval(result["answer"]) == ["child: a saw 2", "child: b saw 4"]


async def test_custom_stream_mode_yields_steps_code_output_and_sub_calls(tmp_path):
    code = "answers = llm_query_batched(['one', 'two'])\nprint('got', len(answers))"
    root = ScriptedChatModel(respond=steps(f"```repl\n{code}\n```", "```repl\nFINAL('done')\n```"))
    graph = compile_graph(root, tmp_path)
    events = [e async for e in graph.astream({"query": "q"}, config(), stream_mode="custom")]
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["step", "code"] and kinds[-5:] == ["step", "code", "output", "answer", "summarising"]
    assert events[-2] == {"event": "answer", "answer": "done", "stop_reason": "final"}
    first_step, first_code = events[0], events[1]
    assert first_step["iteration"] == 1 and first_step["blocks"] == [code]
    assert first_step["usage"]["root_calls"] == 1
    assert first_code["code"] == code
    output = next(e for e in events if e["event"] == "output")
    assert output["iteration"] == 1 and "got 2" in output["output"]
    subcalls = [(e["phase"], e["kind"]) for e in events if e["event"] == "subcall"]
    assert sorted(subcalls) == [("end", "llm")] * 2 + [("start", "llm")] * 2


async def test_settings_given_per_run_as_context_win_over_the_builder(tmp_path):
    from langgraph_rlm import RLMSettings

    root = ScriptedChatModel(respond=until_limit("```repl\nprint('looking')\n```", "best guess"))
    graph = compile_graph(root, tmp_path, max_iterations=30, compact_turns=False)
    per_run = RLMSettings(
        model=root,
        sub_model=echo_sub(),
        state_dir=str(tmp_path / "state"),
        max_iterations=2,
        compact_turns=False,
    )
    result = await graph.ainvoke({"query": "q"}, config(), context=per_run)
    assert result["stop_reason"] == "max_iterations (2 steps)"
    assert result["answer"] == "best guess" and len(root.calls) == 3


async def test_a_partial_context_keeps_the_builders_models_and_ignores_unknown_keys(tmp_path):
    root = ScriptedChatModel(respond=until_limit("```repl\nprint('looking')\n```", "best guess"))
    graph = compile_graph(root, tmp_path, max_iterations=30, compact_turns=False)
    result = await graph.ainvoke({"query": "q"}, config(), context={"max_iterations": 2, "user_id": "u1"})
    assert result["stop_reason"] == "max_iterations (2 steps)"
    assert result["answer"] == "best guess" and len(root.calls) == 3


async def test_a_context_that_names_a_file_is_text_unless_the_operator_allows_it(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    root = ScriptedChatModel(respond=lambda messages: "```repl\nFINAL(context)\n```")
    graph = compile_graph(root, tmp_path)
    result = await graph.ainvoke({"query": "q", "contexts": [str(secret)]}, config("text"))
    assert result["answer"] == str(secret)
    allowed = compile_graph(root, tmp_path, allow_dirs=(str(tmp_path),))
    result = await allowed.ainvoke({"query": "q", "contexts": [str(secret)]}, config("file"))
    assert result["answer"] == "host secret"


async def test_a_run_cancelled_mid_cell_stops_the_cell_and_leaves_the_repl_as_its_checkpoint(tmp_path):
    def respond(messages):
        question = question_of(messages)
        if "set y" in question:
            return "```repl\ny = 1\nFINAL('y set')\n```"
        if "set z" in question:
            return "```repl\nz = 1\nimport time\ntime.sleep(4)\nllm_query('too late')\n```"
        return "```repl\nFINAL(f\"{'y' in globals()} {'z' in globals()}\")\n```"

    sub = echo_sub()
    graph = compile_graph(ScriptedChatModel(respond=respond), tmp_path, sub=sub, compact_turns=False)
    assert (await graph.ainvoke({"query": "set y"}, config()))["answer"] == "y set"
    run = asyncio.create_task(graph.ainvoke({"query": "set z"}, config()))
    await asyncio.sleep(2)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert (await graph.aget_state(config())).next, "the cancelled question stays unfinished"
    assert (await graph.ainvoke({"query": "look"}, config()))["answer"] == "True False"
    await asyncio.sleep(5)
    assert not sub.calls, "the cancelled cell went on running"
