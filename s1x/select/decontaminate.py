"""Decontamination as in s1: drop pool questions that share an 8-gram (after normalisation) with,
or equal, a question of any evaluated benchmark."""
from __future__ import annotations

import re

NGRAM = 8


WORD = re.compile(r"[a-z0-9]+")


def normalise(text: str) -> list[str]:
    return WORD.findall(text.lower())


def _ngrams(words: list[str]) -> set[tuple[str, ...]]:
    return set(zip(*(words[i:] for i in range(NGRAM))))


def decontaminate(rows: list[dict], benchmarks: dict[str, list[str]]) -> tuple[list[dict], dict[str, int]]:
    """(rows kept, {benchmark: pool rows it removed}); a row is charged to the first benchmark it hits."""
    exact = {name: {" ".join(normalise(q)) for q in questions} for name, questions in benchmarks.items()}
    grams = {name: set().union(*(_ngrams(normalise(q)) for q in questions)) if questions else set()
             for name, questions in benchmarks.items()}
    removed = dict.fromkeys(benchmarks, 0)
    kept = []
    for row in rows:
        words = normalise(row["question"])
        joined, row_grams = " ".join(words), _ngrams(words)
        hit = next((name for name in benchmarks if joined in exact[name] or not grams[name].isdisjoint(row_grams)), None)
        if hit is None:
            kept.append(row)
        else:
            removed[hit] += 1
    return kept, removed
