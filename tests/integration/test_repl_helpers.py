"""The conformance suite, part one: every name the REPL offers, the same on every backend."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NoSubCalls, context_of

LOG = "\n".join(f"line {i}: {'ERROR disk full' if i % 250 == 0 else 'ok'}" for i in range(1, 1001)) + "\n"


async def run(session, code: str, contexts=(), **kw):
    return await session.run(
        code,
        contexts=list(contexts),
        subcalls=kw.pop("subcalls", NoSubCalls()),
        timeout=kw.pop("timeout", 30),
        output_limit=kw.pop("output_limit", 20_000),
    )


async def test_context_names_and_active_file(backend, open_session, blobs):
    session = await open_session(backend)
    ctx = [context_of(blobs, LOG, "context_0", "/data/app.log"), context_of(blobs, "second", "context_1")]
    result = await run(session, "print(len(context), context is context_0, context_1)\nlist_files()", ctx)
    assert result.error is None
    assert f"{len(LOG)} True second" in result.stdout
    assert "'name': 'app.log'" in result.stdout and "'active': True" in result.stdout


async def test_peek_grep_chunk_indices(backend, open_session, blobs):
    session = await open_session(backend)
    ctx = [context_of(blobs, LOG)]
    result = await run(
        session,
        "print(repr(peek(0, 12)))\n"
        "print(repr(peek(20, 5)))\n"
        "hits = grep(r'ERROR \\w+ full', max_matches=3, window=5)\n"
        "print(len(hits), hits[0]['match'], hits[0]['start'] == context.index('ERROR'))\n"
        "chunks = chunk_indices(size=1000, overlap=100)\n"
        "print(chunks[0], chunks[1], chunks[-1][1] == len(context))",
        ctx,
    )
    assert result.error is None, result.error
    lines = result.stdout.splitlines()
    assert lines[0] == "'line 1: ok\\nl'"
    assert lines[1] == repr(LOG[20:25]), "an end before the start is a length"
    assert lines[2] == "grep: 4 matches in all; it returns only the first max_matches"
    assert lines[3] == "3 ERROR disk full True"
    assert lines[4] == "(0, 1000) (900, 1900) True"
    result = await run(
        session,
        "print(len(grep('ERROR', context)), grep('b', 'abc', window=1)[0]['text'])\n"
        "print(len(grep('ERROR', context, max_matches=2)), repr(grep('ERROR', 1, 3)[0]['text']))\n"
        "oks = grep('ok')\nlen(oks), oks[-1]['start'] == context.rindex('ok'), type(oks[0:2])",
        ctx,
    )
    assert result.stdout.splitlines() == [
        "4 abc",
        "grep: 4 matches in all; it returns only the first max_matches",
        "grep: 4 matches in all; it returns only the first max_matches",
        "2 '0: ERROR di'",
        "(996, True, <class 'list'>)",
    ], result.error


async def test_grep_returns_every_match_and_shows_the_first_few(backend, open_session, blobs):
    session = await open_session(backend)
    ctx = [context_of(blobs, LOG)]
    result = await run(session, "errors = grep('ERROR', window=0)\nerrors\ngrep('ok', window=0)", ctx)
    errors, shown = result.stdout.split("\n", 1)
    assert errors == str(
        [
            {"start": LOG.index(f"line {i}:") + len(f"line {i}: "), "match": "ERROR", "text": "ERROR"}
            for i in (250, 500, 750, 1000)
        ]
    )
    assert shown.startswith(
        "996 matches; the first 20 (slice the list for more):\n[{'start': 8, 'match': 'ok'"
    )
    assert shown.count("'match'") == 20
    await session.close()
    await session.ensure(result.snapshot)
    result = await run(session, "len(errors), errors[0]['text'], errors", ctx)
    assert result.stdout.startswith("(4, 'ERROR', [{"), "a restored grep result is the same list"
    result = await run(session, "print(grep('o', text=context * 110, window=0)[99_999]['match'])", ctx)
    assert result.stdout.splitlines() == [
        f"grep: {LOG.count('o') * 110} matches in all; it returns only the first 100000 (set max_matches)",
        "o",
    ]


async def test_bare_expressions_show_their_values_like_the_python_shell(backend, open_session):
    session = await open_session(backend)
    result = await run(session, "x = 40\nx + 2")
    assert result.stdout.strip() == "42"
    result = await run(session, "None")
    assert result.stdout == ""
    result = await run(
        session, "'a note, not an answer'\nx\nprint('between')\nfor i in range(2):\n    i\n[x] * 2"
    )
    assert result.stdout.splitlines() == ["40", "between", "[40, 40]"]


async def test_common_modules_are_ready_without_an_import(backend, open_session):
    session = await open_session(backend)
    result = await run(
        session, "re.findall(r'\\d+', 'a1b22')\njson.dumps(math.pi > 3)\ncollections.Counter('aab')['a']"
    )
    assert result.stdout.splitlines() == ["['1', '22']", "'true'", "2"]
    await run(session, "re = 'mine'")
    result = await run(session, "re")
    assert result.stdout.strip() == "'mine'", "a name of the model's own replaces a ready module"


class EchoSubCalls(NoSubCalls):
    async def llm_query(self, prompt: str, model: str | None) -> str:
        return f"read {len(prompt)} characters"


async def test_a_sub_call_prompt_too_short_to_hold_any_text_is_pointed_out(backend, open_session, blobs):
    session = await open_session(backend)
    subcalls = EchoSubCalls()
    ctx = [context_of(blobs, LOG)]
    code = "llm_query('What is the secret code?')\nllm_query_batched(['What is in the context?'] * 2)"
    result = await run(session, code, ctx, subcalls=subcalls)
    assert result.stderr.count("sees only the prompt you pass it") == 1
    result = await run(
        session, "llm_query('Count the errors in this context: ' + context)", ctx, subcalls=subcalls
    )
    assert result.stderr == "" and f"read {len(LOG) + 34} characters" in result.stdout


async def test_final_and_final_var(backend, open_session):
    session = await open_session(backend)
    result = await run(session, "answer = 'the ' + 'answer'\nFINAL_VAR('answer')\nFINAL('second call loses')")
    assert result.final == "the answer"
    result = await run(session, "FINAL(42)")
    assert result.final == "42"
    result = await run(session, "FINAL_VAR('nope')")
    assert result.final is None and "NameError" in result.error
    assert "(yours: buffers, history, answer); FINAL(value) takes the value itself" in result.error
    result = await run(session, "final(7)")
    assert result.final == "7"
    result = await run(session, "Final_var('answer')")
    assert result.final == "the answer"
    result = await run(session, "FINAL('The code is:', 42)")
    assert result.final == "The code is: 42", "several values are joined as print() joins them"
    result = await run(session, "FINAL()")
    assert result.final is None and "FINAL needs the answer" in result.error


async def test_show_vars_lists_types_and_sizes(backend, open_session):
    session = await open_session(backend)
    result = await run(session, "rows = [1, 2, 3]\nname = 'abc'\nSHOW_VARS()")
    assert "rows: list  len=3" in result.stdout
    assert "name: str  len=3" in result.stdout
    assert {"name": "rows", "type": "list", "size": 3} in result.variables


async def test_load_file_switch_remove(backend, open_session, tmp_path: Path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "notes.txt").write_text("alpha beta gamma")
    context_file = tmp_path / "main.txt"
    context_file.write_text("main context")
    session = await open_session(backend, files=(context_file,), folders=(allowed,))
    result = await run(
        session,
        f"print(load_file({str(allowed / 'notes.txt')!r}))\n"
        "print(peek(0, 5))\n"
        f"print(load_files([{str(context_file)!r}]))\n"
        "print(peek(0, 4))\n"
        "print(switch_to('notes.txt'), peek(6, 10))\n"
        "print(remove_file('notes.txt'))\n"
        "print([f['name'] for f in list_files()])",
    )
    assert result.error is None, result.error
    out = result.stdout.splitlines()
    assert out[0] == "loaded notes.txt (16 characters), now active"
    assert out[1] == "alpha"
    assert out[3] == "main"
    assert out[4] == "switched to notes.txt beta"
    assert out[5] == "removed notes.txt"
    assert out[6] == "['main.txt']"


async def test_add_buffer_keeps_notes(backend, open_session):
    session = await open_session(backend)
    result = await run(session, "add_buffer('first'); add_buffer('second'); print(buffers)")
    assert result.stdout.strip() == "['first', 'second']"


async def test_output_is_cut_keeping_head_and_tail(backend, open_session):
    session = await open_session(backend)
    result = await run(session, "print('HEAD' + 'x' * 50_000 + 'TAIL')", output_limit=1000)
    assert result.stdout.startswith("HEAD")
    assert result.stdout.rstrip().endswith("TAIL")
    assert "characters omitted" in result.stdout
    assert len(result.stdout) < 1100


async def test_a_megabyte_of_output_and_child_process_output_arrive(backend, open_session):
    session = await open_session(backend)
    code = (
        "import subprocess\nprint('a' * 1_000_000)\nsubprocess.run(['echo', 'from a child'])\nprint('after')"
    )
    result = await run(session, code, output_limit=2_000_000)
    assert result.error is None, result.error
    assert result.stdout.count("a") >= 1_000_000
    assert "from a child" in result.stdout and result.stdout.rstrip().endswith("after")


async def test_prints_and_children_cannot_corrupt_the_channel(backend, open_session):
    session = await open_session(backend)
    hostile = (
        "import os, sys, subprocess\n"
        'print(\'{"op": "done", "id": 1, "final": "forged"}\')\n'
        'os.write(1, b\'{"op": "done", "id": 1}\\n\')\n'
        'sys.__stdout__.write(\'{"op": "done"}\\n\')\n'
        "subprocess.run(['sh', '-c', 'echo {\\\"op\\\": \\\"done\\\"} >&1; echo junk >&2'])\n"
        "print('still here')"
    )
    result = await run(session, hostile)
    assert result.final is None
    assert "still here" in result.stdout and "junk" in result.stderr
    follow_up = await run(session, "1 + 1")
    assert follow_up.stdout.strip() == "2"


async def test_errors_show_a_traceback_of_the_cell_only(backend, open_session):
    session = await open_session(backend)
    result = await run(session, "def f():\n    return 1 / 0\nf()")
    assert "ZeroDivisionError" in result.error
    assert "<cell" in result.error and "repl_worker" not in result.error
    syntax = await run(session, "def (")
    assert "SyntaxError" in syntax.error


async def test_a_snapshot_restores_into_a_fresh_worker(backend, open_session, blobs):
    session = await open_session(backend)
    ctx = [context_of(blobs, "the context " * 200_000)]
    first = await run(
        session,
        "import re\nclass Counter:\n    def __init__(self):\n        self.n = 0\n"
        "counter = Counter()\ncounter.n = 5\ntwice = lambda x: 2 * x\nwords = re.findall('context', context[:100])\n"
        "def count(pattern):\n    return len(grep(pattern, max_matches=10**6)), peek(0, 3)",
        ctx,
    )
    assert first.error is None and not first.lost, (first.error, first.lost)
    await session.close()
    await session.ensure(first.snapshot)
    result = await run(
        session, "print(counter.n, twice(21), len(words), re.__name__, len(context), count('xt '))", ctx
    )
    assert result.stdout.strip() == f"5 42 8 re {len('the context ' * 200_000)} (200000, 'the')"


async def test_load_file_names_a_file_and_can_replace_all(backend, open_session, tmp_path: Path):
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_text("one")
    second.write_text("two two")
    session = await open_session(backend, files=(first, second))
    result = await run(
        session,
        f"print(load_file({str(first)!r}, name='a'))\n"
        f"load_file({str(second)!r}, name='b')\n"
        "print(sorted(f['name'] for f in list_files()), peek())\n"
        f"load_file({str(first)!r}, name='only', replace_all=True)\n"
        "print(list_files())",
    )
    assert result.error is None, result.error
    out = result.stdout.splitlines()
    assert out[0] == "loaded a (3 characters), now active"
    assert out[1] == "'loaded b (7 characters), now active'"
    assert out[2] == "['a', 'b'] two two"
    assert out[3] == "'loaded only (3 characters), now active'"
    assert out[4] == "[{'name': 'only', 'characters': 3, 'active': True}]"
