"""A paired comparison of two cells on the same benchmark and curve point: the same problems answered by both, so
the difference in accuracy is tested on the problems where they disagree (exact McNemar) and bounded by a
bootstrap over problems, not read off two unpaired intervals.

Records (the evaluate stage's records/*.jsonl, one per problem id and sample, with a boolean `correct`) are paired
by (id, sample); a problem's samples stay together when the bootstrap resamples problems. McNemar's test treats
each pair as independent, which several samples of one problem are not quite: with eval.samples > 1, the
bootstrap interval is the safer reading.

To compare two cells at a point: compare_cells(cell_a, cell_b, Series("embedded", Point(extensions=2))).
"""
from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from s1x.evaluate.results import Method, Result, Series
from s1x.outcomes import CELL_FILE, stage_dir

RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
DRAWS_PER_CHUNK = 4_000_000  # resamples x problems drawn at once: ~32 MB of indices, whatever the benchmark's size

# problem -> (A correct, B correct) for each sample both cells answered; the bootstrap's unit is a key
Pairs = dict[Hashable, list[tuple[bool, bool]]]


@dataclass(frozen=True)
class PairedComparison:
    """A against B on n paired answers: a_only answers only A got right, b_only only B (the discordant pairs)."""
    n: int
    accuracy_a: float
    accuracy_b: float
    a_only: int
    b_only: int
    p_value: float  # exact two-sided McNemar: a binomial test of a_only against b_only at 1/2
    difference_ci95: tuple[float, float]  # of accuracy_a - accuracy_b, a paired bootstrap over problems

    @property
    def difference(self) -> float:
        return self.accuracy_a - self.accuracy_b

    def numbers(self) -> list:
        """A CSV row's plain numbers: n, both accuracies, the difference and its interval, the discordant counts, p."""
        return [self.n, self.accuracy_a, self.accuracy_b, self.difference, *self.difference_ci95, self.a_only,
                self.b_only, self.p_value]

    def swapped(self) -> "PairedComparison":
        """B against A: the same test, read from the other side."""
        low, high = self.difference_ci95
        return PairedComparison(self.n, self.accuracy_b, self.accuracy_a, self.b_only, self.a_only, self.p_value,
                                (-high, -low))


def mcnemar_p(a_only: int, b_only: int) -> float:
    """Exact two-sided McNemar p: twice the binomial tail of the smaller discordant count, at most 1. The tail's
    binomials are exact integers, each from the one before (thousands of discordant answers take milliseconds)."""
    discordant = a_only + b_only
    term = tail = 1  # C(discordant, 0)
    for i in range(min(a_only, b_only)):
        term = term * (discordant - i) // (i + 1)  # C(discordant, i + 1), an exact division
        tail += term
    return min(1.0, 2 * tail / 2 ** discordant)


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down correction for testing several comparisons at once, in the input's order: the i-th
    smallest p times (m - i + 1), never below an earlier one's, at most 1. It keeps the chance of any false
    "real difference" among all m at or under the level, without assuming the tests independent."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [1.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def detectable_difference(n: int, discordance: float = 0.25, power: float = 0.8, level: float = 0.05) -> float:
    """The smallest accuracy difference a paired test on n answers detects with `power` at `level`, where a
    `discordance` share of the answers differ between the two cells (Connor's normal approximation to McNemar:
    n d^2 = (z_level/2 sqrt(psi) + z_power sqrt(psi - d^2))^2, solved for d by bisection)."""
    from statistics import NormalDist

    z_level, z_power = NormalDist().inv_cdf(1 - level / 2), NormalDist().inv_cdf(power)
    low, high = 0.0, discordance
    for _ in range(60):
        d = (low + high) / 2
        needed = (z_level * discordance ** 0.5 + z_power * max(discordance - d * d, 0.0) ** 0.5) ** 2 / (d * d)
        low, high = (d, high) if needed > n else (low, d)
    return high


def bootstrap_interval(pairs: Pairs, resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED,
                       level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of the accuracy difference (A - B) over `resamples` draws of problems with
    replacement, each drawn problem bringing all its samples."""
    differences = np.array([sum(a - b for a, b in samples) for samples in pairs.values()], dtype=float)
    counts = np.array([len(samples) for samples in pairs.values()], dtype=float)
    rng = np.random.default_rng(seed)
    chunk = max(1, DRAWS_PER_CHUNK // len(pairs))
    estimates = []
    for start in range(0, resamples, chunk):
        drawn = rng.integers(0, len(pairs), size=(min(chunk, resamples - start), len(pairs)))
        estimates.append(differences[drawn].sum(axis=1) / counts[drawn].sum(axis=1))
    low, high = np.quantile(np.concatenate(estimates), [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def pair_records(records_a: Sequence[dict], records_b: Sequence[dict]) -> Pairs:
    """The (id, sample) answers both sets of records hold, grouped by problem id."""
    b_correct = {(r["id"], r["sample"]): bool(r["correct"]) for r in records_b}
    pairs: Pairs = defaultdict(list)
    for record in records_a:
        key = (record["id"], record["sample"])
        if key in b_correct:
            pairs[record["id"]].append((bool(record["correct"]), b_correct[key]))
    return dict(pairs)


def compare_pairs(pairs: Pairs, resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED) -> PairedComparison:
    """Accuracies, discordant counts, McNemar p and the bootstrap interval of paired answers."""
    answers = [pair for samples in pairs.values() for pair in samples]
    if not answers:
        raise ValueError("no paired answers: the two sets of records share no (id, sample)")
    a_only = sum(a and not b for a, b in answers)
    b_only = sum(b and not a for a, b in answers)
    return PairedComparison(len(answers), sum(a for a, _ in answers) / len(answers),
                            sum(b for _, b in answers) / len(answers), a_only, b_only, mcnemar_p(a_only, b_only),
                            bootstrap_interval(pairs, resamples, seed))


def compare_records(records_a: Sequence[dict], records_b: Sequence[dict], resamples: int = RESAMPLES,
                    seed: int = BOOTSTRAP_SEED) -> PairedComparison:
    """A's records against B's, paired by (id, sample); ValueError where they share none."""
    return compare_pairs(pair_records(records_a, records_b), resamples, seed)


def point_records(cell_dir: Path, series: Series) -> list[dict]:
    """A finished cell's per-sample records of one series (a benchmark, at a curve point or none; majority
    voting has no records of its own); FileNotFoundError where the cell or its evaluation has none."""
    cell = json.loads((Path(cell_dir) / CELL_FILE).read_text())
    results = [Result.from_dict(entry) for entry in cell.get("results", [])]
    found = next((r for r in results if r.method is Method.single and r.series == series), None)
    if found is None:
        raise FileNotFoundError(f"{cell_dir}: no results for {series.label}")
    path = stage_dir(cell_dir, "eval") / found.records
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def compare_cells(cell_a: Path, cell_b: Path, series: Series, series_b: Optional[Series] = None,
                  resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED) -> PairedComparison:
    """Cell A against cell B on one series (B on `series_b` where given: a cell's +2 against its own +0),
    paired by problem and sample."""
    return compare_records(point_records(cell_a, series), point_records(cell_b, series_b or series), resamples, seed)


class SweepRecords:
    """A sweep's records by (cell directory relative to the sweep, series), each file read once; None where a
    cell has none (it failed, or its evaluation is gone from the store)."""

    def __init__(self, sweep_dir: Path):
        self.sweep_dir = Path(sweep_dir)
        self._read: dict[tuple[str, Series], Optional[list[dict]]] = {}

    def get(self, cell: str, series: Series) -> Optional[list[dict]]:
        if (cell, series) not in self._read:
            try:
                self._read[cell, series] = point_records(self.sweep_dir / cell, series)
            except FileNotFoundError:
                self._read[cell, series] = None
        return self._read[cell, series]
