"""The benchmark's generated tasks: the same text for the same seed, and an answer that is right."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from langgraph_rlm.bench.scoring import is_correct
from langgraph_rlm.bench.sizes import parse_sizes, size_label
from langgraph_rlm.bench.tasks import CHARS_PER_TOKEN, LABELS, make_task


@pytest.mark.parametrize("name", ["niah", "aggregate"])
def test_a_seed_gives_the_same_task_and_another_seed_another(name):
    first, again, other = (make_task(name, 4096, seed) for seed in ("0.1", "0.1", "0.2"))
    assert first == again
    assert first.context != other.context
    assert abs(len(first.context) - 4096 * CHARS_PER_TOKEN) < 200


@pytest.mark.parametrize("seed", [str(n) for n in range(20)])
def test_the_needle_is_there_once_and_is_the_answer(seed):
    task = make_task("niah", 2048, seed)
    assert task.context.count("secret code") == 1
    assert re.findall(r"\d+", task.context) == [task.answer]
    assert f"The secret code is {task.answer}." in task.context


def test_the_needle_is_found_at_every_depth():
    depths = {make_task("niah", 2048, str(n)).context.index("secret code") for n in range(30)}
    positions = sorted(d / (2048 * CHARS_PER_TOKEN) for d in depths)
    assert positions[0] < 0.2 and positions[-1] > 0.8


@pytest.mark.parametrize("seed", [str(n) for n in range(30)])
def test_the_aggregate_answer_is_what_the_lines_say(seed):
    task = make_task("aggregate", 2048, seed)
    lines = task.context.splitlines()
    assert all(re.fullmatch(r"\[[\d\- :]+\] user=U\d{4} label=\w+ note=[a-z ]+", line) for line in lines)
    counts = Counter(re.search(r"label=(\w+)", line).group(1) for line in lines)
    if task.kind == "count":
        label = re.search(r"label=(\w+)", task.question).group(1)
        assert task.answer == str(counts[label])
    else:
        (top, most), (_, second) = counts.most_common(2)
        assert task.answer == top and most > second


def test_both_aggregate_questions_are_asked():
    assert {make_task("aggregate", 1024, str(n)).kind for n in range(20)} == {"count", "label"}


def test_a_code_is_right_when_it_is_in_the_answer():
    task = make_task("niah", 1024, "0")
    code = task.answer
    assert is_correct(task, code)
    assert is_correct(task, f"The secret code is {code}.")
    assert not is_correct(task, f"{code}0")
    assert not is_correct(task, str(int(code) + 1))


def test_a_count_is_right_when_it_is_the_only_number():
    task = next(t for t in (make_task("aggregate", 1024, str(n)) for n in range(20)) if t.kind == "count")
    assert is_correct(task, task.answer)
    assert is_correct(task, f"There are {task.answer} such lines.")
    assert not is_correct(task, f"{task.answer} or {int(task.answer) + 1}")
    assert not is_correct(task, str(int(task.answer) + 1))


def test_a_label_is_right_when_it_is_the_only_one_named():
    task = next(t for t in (make_task("aggregate", 1024, str(n)) for n in range(20)) if t.kind == "label")
    other = next(label for label in LABELS if label != task.answer)
    assert is_correct(task, task.answer.upper() + ".")
    assert not is_correct(task, f"{task.answer} or {other}")
    assert not is_correct(task, other)


def test_sizes_are_powers_binary_units_or_counts():
    assert parse_sizes("14, 13,8k,1m,5000") == [5000, 2**13, 2**14, 2**20]
    assert [size_label(n) for n in (2**13, 2**20, 5000)] == ["8k", "1m", "5000"]
    for bad in ("", "13,,14", "2m", "lots", "7"):
        with pytest.raises(ValueError, match="--sizes"):
            parse_sizes(bad)
