"""Benchmark loaders on the shared copies (grading itself: tests/test_grading.py)."""
from __future__ import annotations

import collections
import json

from s1x.evaluate.benchmarks import builtin_spec, load_benchmark
from s1x.evaluate.grading import grade, grade_math
from tests.conftest import ROOT

DATA = ROOT.parent / "shared" / "data"


def test_aime24_has_30_problems_with_string_answers():
    rows = load_benchmark("aime24", builtin_spec("aime24", str(DATA / "aime24" / "test.jsonl"))).rows
    raw = [json.loads(line) for line in open(DATA / "aime24" / "test.jsonl")]
    assert len(rows) == 30 and [r["answer"] for r in rows] == [str(r["answer"]) for r in raw]
    assert rows[0]["answer"] == "204" and rows[0]["kind"] == "math"
    assert all(0 <= int(r["answer"]) <= 999 for r in rows)


def test_math500_has_500_problems_with_their_gold_answers():
    rows = load_benchmark("math500", builtin_spec("math500", str(DATA / "math500" / "test.jsonl"))).rows
    assert len(rows) == 500 and len({r["id"] for r in rows}) == 500
    first = rows[0]
    assert first["id"] == "math500-test/precalculus/807.json"
    assert first["answer"] == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert grade_math("Final Answer: $\\left(3, \\frac{\\pi}{2}\\right)$", first["answer"]).correct


def test_multiple_choice_is_shuffled_with_a_fixed_seed_and_graded_by_letter():
    rows = load_benchmark("mmlu_stem", builtin_spec("mmlu_stem", str(DATA / "mmlu_stem" / "test.jsonl"))).rows
    raw = [json.loads(line) for line in open(DATA / "mmlu_stem" / "test.jsonl")]
    assert len(rows) == len(raw) == 3018
    assert rows == load_benchmark("mmlu_stem", builtin_spec("mmlu_stem", str(DATA / "mmlu_stem" / "test.jsonl"))).rows
    for row, source in zip(rows[:200], raw):
        correct = source["choices"][source["answer"]]
        assert f"{row['answer']}) {correct}" in row["question"] and row["kind"] == "choice"
    letters = collections.Counter(r["answer"] for r in rows)
    assert set(letters) == set("ABCD") and min(letters.values()) > 600  # shuffled, not all in one slot
    first = rows[0]
    assert grade("choice", f"Final Answer: ({first['answer']})", first["answer"]).correct
    wrong = next(letter for letter in "ABCD" if letter != first["answer"])
    verdict = grade("choice", f"Final Answer: {wrong}", first["answer"])
    assert (verdict.extracted, verdict.correct) == (wrong, False)
