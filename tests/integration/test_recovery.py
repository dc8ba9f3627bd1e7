"""Every thread can be recovered, whatever state it is in: a removal that conflicts loads, a
thread that cannot be loaded says so in one line and goes back to its newest checkpoint that
loads (`rlm rewind`) or is forgotten (`rlm reset`), and a broken thread never stops another's
reset nor loses the blobs it may refer to."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from langchain_core.messages import HumanMessage, RemoveMessage
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from tests.conftest import need_bwrap
from tests.openai_server import ScriptedOpenAIServer, is_root_call, last_question, root_step

SERDE = JsonPlusSerializer()
THREAD = "t"


def model(messages):
    """Two steps a question, then FINAL of what the first step computed."""
    if not is_root_call(messages):
        return "summary"
    question = last_question(messages)
    if root_step(messages) == 0:
        return f"```repl\nfound = {len(question)}\nprint('measured')\n```"
    return "```repl\nFINAL(found)\n```"


def threads_file(user) -> Path:
    return user.cwd / ".rlm" / "threads.sqlite"


def message_writes(path: Path, thread: str = THREAD) -> list[tuple[str, str, int, list]]:
    """The thread's stored writes to `messages`, oldest first: (checkpoint, task, index, messages)."""
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT checkpoint_id, task_id, idx, type, value FROM writes "
            "WHERE thread_id = ? AND channel = 'messages' ORDER BY checkpoint_id",
            (thread,),
        ).fetchall()
    return [(c, t, i, SERDE.loads_typed((kind, value))) for c, t, i, kind, value in rows]


def replace_write(path: Path, checkpoint: str, task: str, index: int, value: object) -> None:
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE writes SET type = ?, value = ? WHERE thread_id = ? AND checkpoint_id = ? "
            "AND task_id = ? AND idx = ? AND channel = 'messages'",
            (*SERDE.dumps_typed(value), THREAD, checkpoint, task, index),
        )


def the_other_runs_output(path: Path) -> None:
    """The thread as two runs of its first REPL step from one checkpoint leave it: the key of a
    write is (checkpoint, task, index) and the first one stored stays, so the step's output in
    the store is the other run's, under an id this run never saw; this run's compaction at the
    end of the turn removes its own id."""
    writes = message_writes(path)
    removed = {m.id for *_, batch in writes for m in batch if isinstance(m, RemoveMessage)}
    checkpoint, task, index, (output,) = next(
        w for w in writes if len(w[3]) == 1 and w[3][0].type == "human" and w[3][0].id in removed
    )
    replace_write(path, checkpoint, task, index, [HumanMessage(output.content, id="the-other-run")])


def an_unappliable_write(path: Path) -> None:
    """A stored write the messages channel cannot take, in the middle of the turn."""
    checkpoint, task, index, _ = [w for w in message_writes(path) if w[3][0].type == "human"][1]
    replace_write(path, checkpoint, task, index, 42)


def corrupt_checkpoints(path: Path, thread: str = THREAD, newest_only: bool = True) -> None:
    with sqlite3.connect(path) as db:
        ids = [
            r[0] for r in db.execute("SELECT checkpoint_id FROM checkpoints WHERE thread_id = ?", (thread,))
        ]
        for checkpoint in sorted(ids)[-1:] if newest_only else ids:
            db.execute(
                "UPDATE checkpoints SET checkpoint = ? WHERE thread_id = ? AND checkpoint_id = ?",
                (b"\xc1 not a checkpoint", thread, checkpoint),
            )


def blob_shas(user) -> set[str]:
    return {p.parent.name + p.name for p in (user.cwd / ".rlm" / "blobs").glob("??/*")}


def one_line_error(done, *expected: str) -> str:
    assert done.returncode not in (0, 2), (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    for text in expected:
        assert text in line, line
    return line


def assert_wedged_thread_says_how_to_recover(user) -> None:
    """status, run and trace each say in one line what is wrong and which commands recover it."""
    recover = ("cannot be loaded", "rlm rewind --thread t", "rlm reset --thread t")
    one_line_error(user.run(["status", "--thread", THREAD]), *recover)
    asked = user.run(["run", "the question again", "--thread", THREAD])
    assert asked.stdout == ""
    one_line_error(asked, *recover)
    one_line_error(user.run(["trace", "--thread", THREAD, "--jsonl", "-"]), *recover)


def test_a_removal_that_conflicts_no_longer_wedges_the_thread(user):
    need_bwrap()
    with ScriptedOpenAIServer(model) as server:
        user.use_model(server.url)
        first = user.run(["run", "how long is this question?", "--thread", THREAD])
        assert first.returncode == 0, first.stderr
        the_other_runs_output(threads_file(user))

        status = user.run(["status", "--thread", THREAD])
        assert status.returncode == 0, status.stderr
        assert "last question: how long is this question?" in status.stdout
        assert "skipped removing message" in status.stderr
        trace = user.run(["trace", "--thread", THREAD, "--jsonl", "-"])
        assert trace.returncode == 0, trace.stderr
        assert '"answer": "26"' in trace.stdout
        again = user.run(["run", "and this one?", "--thread", THREAD])
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "13"


def test_a_write_that_cannot_be_applied_is_said_and_rewound_past(user):
    need_bwrap()
    with ScriptedOpenAIServer(model) as server:
        user.use_model(server.url)
        assert user.run(["run", "how long is this question?", "--thread", THREAD]).returncode == 0
        an_unappliable_write(threads_file(user))
        assert_wedged_thread_says_how_to_recover(user)

        rewound = user.run(["rewind", "--thread", THREAD])
        assert rewound.returncode == 0, rewound.stderr
        assert "back at the question 'how long is this question?' (unfinished" in rewound.stderr
        assert user.run(["status", "--thread", THREAD]).returncode == 0
        resumed = user.run(["run", "how long is this question?", "--thread", THREAD])
        assert resumed.returncode == 0, resumed.stderr
        assert resumed.stdout.strip() == "26"
        assert "resuming the unfinished question" in resumed.stderr
        settled = user.run(["rewind", "--thread", THREAD])
    assert settled.returncode == 0 and "loads as it is" in settled.stderr, settled.stderr


def test_corrupt_checkpoint_bytes_are_said_and_rewound_past(user):
    need_bwrap()
    with ScriptedOpenAIServer(model) as server:
        user.use_model(server.url)
        assert user.run(["run", "how long is this question?", "--thread", THREAD]).returncode == 0
        corrupt_checkpoints(threads_file(user))
        assert_wedged_thread_says_how_to_recover(user)

        rewound = user.run(["rewind", "--thread", THREAD])
        assert rewound.returncode == 0, rewound.stderr
        assert "back at the question 'how long is this question?'" in rewound.stderr
        trace = user.run(["trace", "--thread", THREAD, "--jsonl", "-"])
        assert trace.returncode == 0, trace.stderr
        following = user.run(["run", "and this one?", "--thread", THREAD])
    assert following.returncode == 0, following.stderr
    assert following.stdout.strip() == "13"


def test_reset_forgets_a_thread_that_cannot_be_loaded(user):
    need_bwrap()
    with ScriptedOpenAIServer(model) as server:
        user.use_model(server.url)
        asked = user.run(
            ["run", "how long is this question?", "-c", "examples/sample.log", "--thread", THREAD]
        )
        assert asked.returncode == 0, asked.stderr
        an_unappliable_write(threads_file(user))
        corrupt_checkpoints(threads_file(user))
        assert blob_shas(user)

        reset = user.run(["reset", "--thread", THREAD])
        assert reset.returncode == 0, reset.stderr
        assert "thread t reset;" in reset.stderr and "bytes freed" in reset.stderr
    assert blob_shas(user) == set(), "the thread's context and REPL snapshots are collected"
    assert user.run(["status", "--thread", THREAD]).returncode == 2
    assert "no threads yet" in user.run(["threads"]).stdout


def test_a_broken_thread_stops_no_reset_and_keeps_what_it_may_refer_to(user):
    """What an unreadable checkpoint refers to is unknown, so no blob is collected while one is
    there; once that thread is reset, everything unreferenced goes."""
    need_bwrap()
    with ScriptedOpenAIServer(model) as server:
        user.use_model(server.url)
        for thread, context in (("good", "examples/sample.log"), ("bad", "examples/parent_agent.py")):
            asked = user.run(["run", "how long is this question?", "-c", context, "--thread", thread])
            assert asked.returncode == 0, asked.stderr
    before = blob_shas(user)
    corrupt_checkpoints(threads_file(user), "bad", newest_only=False)

    reset = user.run(["reset", "--thread", "good"])
    assert reset.returncode == 0, reset.stderr
    assert "thread good reset; no blob collected, since a checkpoint of thread(s) bad cannot be read" in (
        " ".join(reset.stderr.split())
    )
    assert blob_shas(user) == before
    assert "good" not in user.run(["threads"]).stdout

    assert user.run(["reset", "--thread", "bad"]).returncode == 0
    assert blob_shas(user) == set()


def test_a_context_deleted_from_the_store_is_named_and_given_again(user):
    """A blob removed by hand (or lost with a disk) is said in one line naming the context and
    the way back; giving the file again stores the same content and the thread goes on."""
    need_bwrap()
    notes = user.cwd / "notes.txt"
    notes.write_text("twenty-one characters")
    with ScriptedOpenAIServer(model) as server:
        user.use_model(server.url)
        first = user.run(["run", "how long is this question?", "-c", "notes.txt", "--thread", THREAD])
        assert first.returncode == 0, first.stderr
        sha = hashlib.sha256(notes.read_bytes()).hexdigest()
        (user.cwd / ".rlm" / "blobs" / sha[:2] / sha[2:]).unlink()

        lost = user.run(["run", "and this one?", "--thread", THREAD])
        assert lost.returncode != 0 and lost.stdout == ""
        errors = [line for line in lost.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "Traceback" not in lost.stderr, lost.stderr
        assert "'notes.txt' is no longer in the store" in errors[0]
        assert "--context" in errors[0] and "rlm reset" in errors[0]

        again = user.run(["run", "and this one?", "-c", "notes.txt", "--thread", THREAD])
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == str(len("and this one?"))
