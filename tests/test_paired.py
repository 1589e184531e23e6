"""The paired test of two cells (s1x/report/paired.py) against values computed by hand."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from s1x.evaluate.results import Method, Point, Result, Series
from s1x.report.paired import (bootstrap_interval, compare_cells, compare_pairs, compare_records, holm_adjusted, mcnemar_p,
                               pair_records, point_records)


def _pairs(**counts: int) -> dict[str, list[tuple[bool, bool]]]:
    """One sample per problem: counts of problems by outcome, both / a_only / b_only / neither right."""
    outcomes = {"both": (True, True), "a_only": (True, False), "b_only": (False, True), "neither": (False, False)}
    return {f"{kind}-{i}": [outcomes[kind]] for kind, count in counts.items() for i in range(count)}


@pytest.mark.parametrize("a_only, b_only, p", [
    (1, 9, 2 * (1 + 10) / 1024),  # C(10,0) + C(10,1) = 11 of 2^10, both tails
    (9, 1, 2 * (1 + 10) / 1024),  # two-sided: the same either way round
    (3, 0, 0.25),  # 2 * 1/8
    (0, 20, 2 / 2 ** 20),
    (5, 5, 1.0),  # an even split: twice a tail past one half, capped
    (0, 0, 1.0),  # no discordant answers, no evidence
])
def test_exact_mcnemar_p(a_only: int, b_only: int, p: float):
    assert mcnemar_p(a_only, b_only) == p


def test_mcnemar_p_stays_exact_past_floating_point_binomials():
    """Thousands of discordant answers: integer binomials, so the tail neither overflows nor rounds to zero."""
    assert mcnemar_p(2000, 2000) == 1.0
    assert mcnemar_p(1000, 1100) == pytest.approx(0.031, abs=0.002)  # normal approximation: z = 99.5 / sqrt(2100) = 2.17
    assert mcnemar_p(5000, 5200) == pytest.approx(0.049, abs=0.002)  # z = 199.5 / sqrt(10200) = 1.975


def test_records_pair_by_id_and_sample_and_count_the_discordant_answers():
    """Only answers both cells gave are compared; a sample of one problem is not matched to another sample."""
    a = [{"id": "p1", "sample": 0, "correct": True}, {"id": "p1", "sample": 1, "correct": False},
         {"id": "p2", "sample": 0, "correct": True}, {"id": "p3", "sample": 0, "correct": True},
         {"id": "only-in-a", "sample": 0, "correct": True}]
    b = [{"id": "p1", "sample": 1, "correct": True}, {"id": "p1", "sample": 0, "correct": True},
         {"id": "p2", "sample": 0, "correct": False}, {"id": "p3", "sample": 0, "correct": True}]
    assert pair_records(a, b) == {"p1": [(True, True), (False, True)], "p2": [(True, False)], "p3": [(True, True)]}
    result = compare_records(a, b)
    assert (result.n, result.accuracy_a, result.accuracy_b, result.a_only, result.b_only) == (4, 0.75, 0.75, 1, 1)
    assert result.difference == 0 and result.p_value == 1.0
    with pytest.raises(ValueError, match="share no"):
        compare_records(a, [{"id": "p1", "sample": 2, "correct": True}])


def test_comparison_read_from_the_other_side():
    result = compare_pairs(_pairs(both=2, a_only=5, b_only=1, neither=2))
    swapped = result.swapped()
    assert (swapped.accuracy_a, swapped.accuracy_b, swapped.a_only, swapped.b_only) == (0.3, 0.7, 1, 5)
    assert swapped.difference == pytest.approx(-0.4) and swapped.p_value == result.p_value
    assert swapped.difference_ci95 == (-result.difference_ci95[1], -result.difference_ci95[0])


def test_bootstrap_interval_matches_the_paired_standard_error():
    """n = 200, 23 vs 10 discordant: the difference's standard error is sqrt((b+c)/n - ((b-c)/n)^2) / sqrt(n), and
    the percentile interval is d -+ 1.96 of it to within one answer's share (differences move in steps of 1/200)."""
    result = compare_pairs(_pairs(both=60, a_only=23, b_only=10, neither=107))
    assert (result.n, result.accuracy_a, result.accuracy_b) == (200, 0.415, 0.35)
    assert result.p_value == pytest.approx(0.0351, abs=1e-4)
    standard_error = math.sqrt(33 / 200 - (13 / 200) ** 2) / math.sqrt(200)
    low, high = result.difference_ci95
    assert low == pytest.approx(0.065 - 1.96 * standard_error, abs=0.005)
    assert high == pytest.approx(0.065 + 1.96 * standard_error, abs=0.005)


def test_bootstrap_is_seeded_and_degenerate_when_every_problem_differs_alike():
    """All discordant answers one way: every resample has the same difference, so the interval is a point. With two
    samples per problem, one discordant, every problem's difference is 1/2: a point only if problems, not answers,
    are resampled."""
    assert compare_pairs(_pairs(a_only=12)).difference_ci95 == (1.0, 1.0)
    halves = {f"p{i}": [(True, False), (False, False)] for i in range(30)}
    assert bootstrap_interval(halves) == (0.5, 0.5)
    spread = _pairs(both=10, a_only=8, b_only=3, neither=9)
    assert bootstrap_interval(spread, resamples=100, seed=1) == bootstrap_interval(spread, resamples=100, seed=1)
    assert bootstrap_interval(spread, resamples=100, seed=1) != bootstrap_interval(spread, resamples=100, seed=2)


def test_cells_are_compared_on_the_records_of_one_series(tmp_path: Path):
    """A budget=scale cell's records are found through its cell.json and eval stage, by benchmark and point."""
    cells = []
    for name, correct_at_cap in (("a", [True, True, False]), ("b", [False, True, False])):
        eval_dir, cell_dir = tmp_path / "store" / name, tmp_path / "sweep" / name
        (eval_dir / "records").mkdir(parents=True)
        cell_dir.mkdir(parents=True)
        results = []
        for i, (point, correct) in enumerate([(Point(cap=8), [False] * 3), (Point(extensions=2), correct_at_cap)]):
            path = f"records/{i}.jsonl"
            (eval_dir / path).write_text("".join(json.dumps({"id": f"q{j}", "sample": 0, "correct": c}) + "\n"
                                                 for j, c in enumerate(correct)))
            results.append(Result("math500", point, Method.single, 1, path, 3, sum(correct) / 3, 10.0).to_dict())
        (cell_dir / "cell.json").write_text(json.dumps({"status": "done", "results": results,
                                                        "stages": {"eval": {"path": str(eval_dir)}}}))
        cells.append(cell_dir)
    at_end = Series("math500", Point(extensions=2))
    assert [r["correct"] for r in point_records(cells[0], at_end)] == [True, True, False]
    result = compare_cells(*cells, at_end)
    assert (result.n, result.a_only, result.b_only, result.p_value) == (3, 1, 0, 1.0)
    assert result.accuracy_a == pytest.approx(2 / 3) and result.accuracy_b == pytest.approx(1 / 3)
    assert compare_cells(*cells, Series("math500", Point(cap=8))).difference == 0
    with pytest.raises(FileNotFoundError, match="no results for math500@16"):
        point_records(cells[0], Series("math500", Point(cap=16)))


def test_holm_multiplies_the_ith_smallest_p_by_the_tests_left_and_keeps_the_order():
    """0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> raised to 0.06; none above 1."""
    assert holm_adjusted([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjusted([0.5, 0.9]) == [1.0, 1.0] and holm_adjusted([0.02]) == [0.02] and holm_adjusted([]) == []
