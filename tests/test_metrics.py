"""Control / Scaling / Performance on hand-made runs whose answers are worked out by hand."""
from __future__ import annotations

import pytest

from s1x.evaluate.records import wilson_interval
from s1x.evaluate.metrics import BudgetRun, control, majority_vote, majority_voting, performance, scaling, scaling_metrics, vote_sizes


def test_budget_forcing_like_curve():
    # Three max budgets, each respected, accuracy rising: 0.2 at 500, 0.3 at 1000, 0.5 at 2000 tokens.
    runs = [BudgetRun(500, 0.2, None, 512), BudgetRun(1000, 0.3, None, 1024), BudgetRun(2000, 0.5, None, 2048)]
    # slopes: (0.3-0.2)/500 = 2e-4, (0.5-0.2)/1500 = 2e-4, (0.5-0.3)/1000 = 2e-4
    assert scaling(runs) == pytest.approx(2e-4)
    assert control(runs) == 1.0
    assert performance(runs) == 0.5


def test_prompt_conditioned_method_overshoots_and_flattens():
    # Token-conditional control: asked for <= 1024 and <= 4096, the model thinks 1500 and 3000 tokens.
    runs = [BudgetRun(1500, 0.40, None, 1024), BudgetRun(3000, 0.35, None, 4096)]
    assert control(runs) == 0.5
    assert scaling(runs) == pytest.approx(-0.05 / 1500)
    assert scaling_metrics(runs) == {"control": 0.5, "scaling": pytest.approx(-0.05 / 1500), "performance": 0.40}


def test_min_budgets_and_unsorted_input():
    runs = [BudgetRun(900, 0.6, 800, None), BudgetRun(300, 0.2, 400, None), BudgetRun(600, 0.4, 500, None)]
    assert control(runs) == pytest.approx(2 / 3)  # 300 < 400 misses its minimum
    assert scaling(runs) == pytest.approx(((0.4 - 0.2) / 300 + (0.6 - 0.2) / 600 + (0.6 - 0.4) / 300) / 3)


def test_equal_thinking_has_no_slope():
    assert scaling([BudgetRun(100, 0.1), BudgetRun(100, 0.3)]) is None
    assert scaling([BudgetRun(100, 0.1), BudgetRun(100, 0.3), BudgetRun(200, 0.5)]) == pytest.approx((0.4 / 100 + 0.2 / 100) / 2)


def test_majority_vote():
    assert majority_vote(["3", "5", "3", "", "5", "3"]) == "3"
    assert majority_vote(["7", "9"]) == "7"
    assert majority_vote(["", ""]) == ""


def test_wilson_interval():
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(50, 100)
    assert (low, high) == (pytest.approx(0.4038, abs=1e-4), pytest.approx(0.5962, abs=1e-4))


def test_vote_sizes_double_up_to_the_sample_count():
    assert vote_sizes(1) == [1]
    assert vote_sizes(8) == [1, 2, 4, 8]
    assert vote_sizes(6) == [1, 2, 4, 6]


def _record(qid: str, sample: int, extracted: str, gold: str, tokens: int) -> dict:
    return {"id": qid, "sample": sample, "extracted": extracted, "correct": extracted == gold, "thinking_tokens": tokens}


def test_majority_voting_over_the_first_k_samples():
    # Question a (gold 3): samples 5, 3, 3, 3. Question b (gold 7): samples 7, 1, 1, "" (no answer).
    records = [_record("a", i, x, "3", 100) for i, x in enumerate(["5", "3", "3", "3"])]
    records += [_record("b", i, x, "7", 200) for i, x in enumerate(["7", "1", "1", ""])]
    curve = majority_voting(list(reversed(records)))  # record order does not matter, the sample index does
    # k=1: a votes 5 (wrong), b votes 7 (right). k=2: a ties 5/3 -> 5 (first seen), b ties 7/1 -> 7.
    # k=4: a votes 3 (right), b votes 1 (wrong; the empty answer never votes).
    assert {k: v["accuracy"] for k, v in curve.items()} == {"1": 0.5, "2": 0.5, "4": 0.5}
    assert curve["1"]["thinking_tokens"] == 150 and curve["4"]["thinking_tokens"] == 600
    fixed = [_record("a", i, x, "3", 100) for i, x in enumerate(["5", "3", "3", "3"])]
    assert {k: v["accuracy"] for k, v in majority_voting(fixed).items()} == {"1": 0.0, "2": 0.0, "4": 1.0}
