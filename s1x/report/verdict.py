"""The verdict that opens a sweep's report: for each swept axis (data=, extend=, ...), which value won, by how
much and with what paired p, at each benchmark's largest budget, and its Scaling.

An axis is compared on the cells that differ in it alone: cells are grouped by their values of the other swept
axes, and within a group each value is one cell. The axis's best value (the most accurate, on average over its
cells) is compared with each other value, pooled over the groups where both ran: the two cells' answers are
paired by problem and sample (s1x/report/paired.py), all groups' pairs together. Each group's problem is a unit
of its own, for McNemar's test and the bootstrap alike: that one problem is hard for every group is not modelled,
so a pooled p is as optimistic as McNemar's independence assumption. The point compared is the last curve point
every compared cell has (budget=curve's "+2"), or the benchmark itself for cells without a curve.
"""
from __future__ import annotations

from dataclasses import dataclass
from statistics import fmean
from typing import Optional

from s1x.evaluate.results import Series
from s1x.report.paired import RESAMPLES, Pairs, PairedComparison, SweepRecords, compare_pairs, pair_records
from s1x.report.render import csv_text
from s1x.report.table import Row, Table

SIGNIFICANCE = 0.05
AXIS_NAMES = {"data": "Selection", "extend": "Extend string", "train": "Training", "budget": "Budget",
              "model": "Model", "pool": "Pool"}
UNSET = "(default)"  # a cell that does not set a swept override runs its default
CSV_COLUMNS = ["axis", "series", "best", "other", "cell_pairs", "n", "best_accuracy", "other_accuracy", "difference",
               "difference_ci95_low", "difference_ci95_high", "best_only", "other_only", "p_value"]


@dataclass(frozen=True)
class AxisComparison:
    """An axis's best value against one other value on one series, pooled over `cell_pairs` pairs of cells."""
    axis: str
    series: Series
    best: str
    other: str
    cell_pairs: int
    paired: PairedComparison  # A: the best value, B: the other


def format_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def discordance(paired: PairedComparison) -> str:
    return f"{paired.a_only} vs {paired.b_only} discordant of {paired.n}"


def _single_series(row: Row, benchmark: str) -> set[Series]:
    return {series for series in row.single_series() if series.benchmark == benchmark}


def _groups(rows: list[Row], axis: str, others: list[str]) -> dict[tuple, dict[str, Row]]:
    """The other axes' values -> this axis's value -> the cell; only groups where the axis takes two values."""
    groups: dict[tuple, dict[str, Row]] = {}
    for row in rows:
        groups.setdefault(tuple(row.axis[a] for a in others), {}).setdefault(row.axis[axis] or UNSET, row)
    return {context: values for context, values in groups.items() if len(values) > 1}


def _largest_common_series(rows: list[Row], benchmark: str) -> Optional[Series]:
    common = set.intersection(*(_single_series(row, benchmark) for row in rows))
    return max(common, key=Series.order) if common else None


def _pooled_pairs(groups: dict[tuple, dict[str, Row]], best: str, other: str, series: Series,
                  records: SweepRecords) -> tuple[Pairs, int]:
    """Every group's (best cell, other cell) answers paired, keyed by (group, problem); and how many groups gave pairs."""
    pooled: Pairs = {}
    cell_pairs = 0
    for context, values in groups.items():
        if best not in values or other not in values:
            continue
        a, b = records.get(values[best].dir, series), records.get(values[other].dir, series)
        if a is None or b is None:
            continue
        pooled.update({(context, problem): samples for problem, samples in pair_records(a, b).items()})
        cell_pairs += 1
    return pooled, cell_pairs


def _benchmarks(table: Table) -> list[str]:
    return sorted({m.series.benchmark for m in table.measures if m.field == "accuracy" and m.series.votes is None})


def axis_comparisons(table: Table, records: SweepRecords) -> list[AxisComparison]:
    """Per swept axis and benchmark, its best value against each other value (most accurate first)."""
    found = []
    for axis in table.axes:
        others = [a for a in table.axes if a != axis]
        for benchmark in _benchmarks(table):
            groups = _groups([row for row in table.finished() if _single_series(row, benchmark)], axis, others)
            rows = [row for values in groups.values() for row in values.values()]
            series = _largest_common_series(rows, benchmark) if rows else None
            if series is None:
                continue
            accuracy: dict[str, list[float]] = {}
            for values in groups.values():
                for value, row in values.items():
                    accuracy.setdefault(value, []).append(row.get(series, "accuracy"))
            ranked = sorted(accuracy, key=lambda value: fmean(accuracy[value]), reverse=True)
            for other in ranked[1:]:
                pairs, cell_pairs = _pooled_pairs(groups, ranked[0], other, series, records)
                if pairs:
                    found.append(AxisComparison(axis, series, ranked[0], other, cell_pairs, compare_pairs(pairs)))
    return found


def _statement(comparison: AxisComparison) -> str:
    paired = comparison.paired
    if paired.p_value >= SIGNIFICANCE:
        return (f"no detectable difference between {comparison.best} and {comparison.other} ({format_p(paired.p_value)}; "
                f"{100 * paired.accuracy_a:.1f} vs {100 * paired.accuracy_b:.1f} %, {discordance(paired)})")
    winner, loser = comparison.best, comparison.other
    if paired.difference < 0:  # the best on average over all its cells can trail in the cells paired here
        winner, loser, paired = loser, winner, paired.swapped()
    low, high = (100 * end for end in paired.difference_ci95)
    return (f"{winner} beats {loser} by {100 * paired.difference:.1f} points ({100 * paired.accuracy_a:.1f} vs "
            f"{100 * paired.accuracy_b:.1f} %, paired {format_p(paired.p_value)}, {discordance(paired)}; "
            f"95 % interval {low:+.1f} to {high:+.1f} points)")


def _scaling(table: Table, axis: str, benchmark: str) -> str:
    """Each value's Scaling on the benchmark's curve (a mean over its cells), highest first; "" without curves."""
    slopes: dict[str, list[float]] = {}
    for row in table.finished():
        scaling = row.get(Series(benchmark), "scaling")
        if scaling is not None:
            slopes.setdefault(row.axis[axis] or UNSET, []).append(scaling)
    if len(slopes) < 2:
        return ""
    means = sorted(((fmean(values), value) for value, values in slopes.items()), reverse=True)
    pooled = " (means over their cells)" if any(len(values) > 1 for values in slopes.values()) else ""
    return " Scaling (%/1K tokens): " + ", ".join(f"{value} {100_000 * mean:.2f}" for mean, value in means) + pooled + "."


def render_verdict(table: Table, comparisons: list[AxisComparison]) -> str:
    """The verdict's Markdown: a line per axis and benchmark, then how it was tested; "" with nothing compared."""
    if not comparisons:
        return ""
    lines = []
    for axis in dict.fromkeys(c.axis for c in comparisons):
        others = [a for a in table.axes if a != axis]
        name = f"{AXIS_NAMES[axis]} ({axis})" if axis in AXIS_NAMES else axis
        for series in dict.fromkeys(c.series for c in comparisons if c.axis == axis):
            found = [c for c in comparisons if c.axis == axis and c.series == series]
            at = f" at {series.point.label}" if series.point else ""
            pooled = f", pooled over {', '.join(others)}" if any(c.cell_pairs > 1 for c in found) else ""
            lines.append(f"- **{name}** on {series.benchmark}{at}{pooled}: " + "; ".join(map(_statement, found)) + "."
                         + _scaling(table, axis, series.benchmark))
    lines.append(f"\nEach swept axis at each benchmark's largest budget: its most accurate value against each other "
                 f"value, in cells that differ only in that axis, paired by problem and sample; p is the exact McNemar "
                 f"test on the discordant answers (a difference counts below p = {SIGNIFICANCE}), the interval a 95 % "
                 f"paired bootstrap over problems ({RESAMPLES:,} resamples). Every comparison: comparisons.csv.")
    return "\n".join(lines) + "\n"


def render_comparisons_csv(comparisons: list[AxisComparison]) -> str:
    """One row per comparison, plain numbers (accuracies as fractions)."""
    return csv_text(CSV_COLUMNS, [[c.axis, c.series.label, c.best, c.other, c.cell_pairs, *c.paired.numbers()]
                                  for c in comparisons])
