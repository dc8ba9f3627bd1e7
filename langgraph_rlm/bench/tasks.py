"""Generated tasks with a known answer, the same text for the same seed.

`niah` is a single needle in a haystack (the paper's S-NIAH): the answer is in one sentence,
anywhere. `aggregate` is OOLONG-like: the answer depends on every line (a count, or the most
frequent label), so no single chunk of the context holds it. Sizes are in tokens, at about four
characters a token.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

CHARS_PER_TOKEN = 4
WORDS = (  # noqa: SIM905
    "river stone quiet morning lantern harbor meadow copper window garden orchard valley bridge "
    "silver market forest letter candle winter summer distant gentle narrow ancient hollow bright "
    "village mountain shadow feather timber signal harvest compass island thunder velvet "
    "painter kettle ribbon saddle basket marble pillow ladder anchor tunnel mirror orange violet"
).split()
LABELS = ("positive", "negative", "neutral", "question", "complaint")


@dataclass(frozen=True)
class Task:
    """`kind` says how an answer is scored: `code` (the needle's code appears), `count` (the one
    number given), `label` (the one label named, out of `choices`)."""

    name: str
    tokens: int
    seed: str
    context: str
    question: str
    answer: str
    kind: str
    choices: tuple[str, ...] = ()


def make_task(name: str, tokens: int, seed: str) -> Task:
    return GENERATORS[name](tokens, seed)


def niah(tokens: int, seed: str) -> Task:
    rng = random.Random(f"niah:{tokens}:{seed}")
    code = str(rng.randrange(1_000_000, 10_000_000))
    needle = f"The secret code is {code}. "
    sentences = filler(rng, tokens * CHARS_PER_TOKEN - len(needle))
    sentences.insert(rng.randrange(len(sentences) + 1), needle)
    return Task(
        name="niah",
        tokens=tokens,
        seed=seed,
        context="".join(sentences),
        question="A secret code is hidden somewhere in the context. What is the secret code? "
        "Answer with the code only.",
        answer=code,
        kind="code",
    )


def filler(rng: random.Random, chars: int) -> list[str]:
    """Sentences of ordinary words, no digits, so the needle is the only number in the text."""
    sentences: list[str] = []
    length = 0
    while length < chars:
        words = rng.choices(WORDS, k=rng.randint(6, 14))
        sentence = " ".join(words).capitalize() + ". "
        sentences.append(sentence)
        length += len(sentence)
    return sentences


def aggregate(tokens: int, seed: str) -> Task:
    rng = random.Random(f"aggregate:{tokens}:{seed}")
    weights = [rng.uniform(1, 5) for _ in LABELS]
    rows: list[list[str]] = []
    length = 0
    while length < tokens * CHARS_PER_TOKEN:
        day = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        stamp = f"{day} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
        label = rng.choices(LABELS, weights)[0]
        row = [stamp, f"U{rng.randrange(1000):04d}", label, " ".join(rng.choices(WORDS, k=4))]
        rows.append(row)
        length += len(line(row))
    counts = Counter(row[2] for row in rows)
    if rng.random() < 0.5:
        label = rng.choice(LABELS)
        question = f"How many lines in the context have label={label}? Answer with the number only."
        answer, kind = str(counts[label]), "count"
    else:
        top = max(counts.values())
        winner = min(label for label, n in counts.items() if n == top)
        if list(counts.values()).count(top) > 1:
            next(row for row in rows if row[2] != winner)[2] = winner
        question = "Which label appears on the most lines of the context? Answer with the label only."
        answer, kind = winner, "label"
    return Task(
        name="aggregate",
        tokens=tokens,
        seed=seed,
        context="".join(line(row) for row in rows),
        question=question,
        answer=answer,
        kind=kind,
        choices=LABELS,
    )


def line(row: list[str]) -> str:
    stamp, user, label, note = row
    return f"[{stamp}] user={user} label={label} note={note}\n"


GENERATORS = {"niah": niah, "aggregate": aggregate}
