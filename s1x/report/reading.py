"""A paragraph that reads a report's scaling curves in words: how far accuracy moves with thinking, whether
the 95 % intervals at the curve's two ends overlap, which cell is best at its largest budget (with the paired
test against the runner-up where both have records at that point), and which differences between cells alike
but for one axis are real there: the report's paired comparisons under 0.05 after Holm's correction, each with
its interval, and how many others show no detectable difference.

Only what the numbers say, with the numbers: a reader can check each sentence against the table.
"""
from __future__ import annotations

from typing import Optional, Sequence

from s1x.evaluate.results import Point, Series
from s1x.report.paired import SweepRecords, compare_records
from s1x.report.pairwise import CellPair
from s1x.report.table import Row, Table
from s1x.report.verdict import SIGNIFICANCE, discordance, format_p

CurvePoint = tuple[float, float, float, float, Point]  # thinking tokens, accuracy, its 95 % interval, the point


def _describe(point: Point) -> str:
    if point.cap is not None:
        return f"cap {point.cap}"
    return f"{point.extensions} extension(s)" if point.extensions else "its own ending"


def _points(row: Row, benchmark: str) -> list[CurvePoint]:
    """Each budget=scale point of the row's curve, by thinking tokens."""
    points = []
    for measure, accuracy in row.values.items():
        series = measure.series
        on_curve = series.point is not None and series.votes is None
        if measure.field == "accuracy" and series.benchmark == benchmark and on_curve:
            points.append((row.get(series, "mean_thinking_tokens"), accuracy, row.get(series, "accuracy_ci95_low"),
                           row.get(series, "accuracy_ci95_high"), series.point))
    return sorted(points, key=lambda p: (p[0], p[4].order()))


def _percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def _paired(records: Optional[SweepRecords], leader: Row, other: Row, benchmark: str, point: Point) -> str:
    """'; paired p = ..., b vs c discordant of n' where both cells have records at the point, else ''."""
    series = Series(benchmark, point)
    a, b = (records.get(row.dir, series) if records else None for row in (leader, other))
    if a is None or b is None:
        return ""
    paired = compare_records(a, b)
    undetectable = "; no detectable difference" if paired.p_value >= SIGNIFICANCE else ""
    return f"; paired {format_p(paired.p_value)}, {discordance(paired)}{undetectable}"


def _real_differences(pairs: list[CellPair]) -> list[str]:
    """At each benchmark's last series the pairs share: each real difference, winner first, then how many are not."""
    sentences = []
    for benchmark in sorted({pair.series.benchmark for pair in pairs}):
        last = max((pair.series for pair in pairs if pair.series.benchmark == benchmark), key=Series.order)
        at_end = [pair for pair in pairs if pair.series == last]
        for pair in (pair for pair in at_end if pair.real):
            paired, winner, loser = pair.paired, pair.a, pair.b
            if paired.difference < 0:
                paired, winner, loser = paired.swapped(), loser, winner
            low, high = (100 * end for end in paired.difference_ci95)
            where = f" with {pair.where}" if pair.where else ""
            sentences.append(f"On {last.label}{where}, {pair.axis}={winner} beats {pair.axis}={loser} by "
                             f"{100 * paired.difference:.1f} points ({low:.1f} to {high:.1f}, Holm-corrected "
                             f"{format_p(pair.p_holm)}).")
        rest = sum(not pair.real for pair in at_end)
        if rest:
            sentences.append(f"{'The other' if rest < len(at_end) else 'All'} {rest} paired comparison(s) on "
                             f"{last.label} show no detectable difference after Holm's correction.")
    return sentences


def reading(table: Table, records: Optional[SweepRecords] = None, pairs: Sequence[CellPair] = ()) -> str:
    """The paragraph, or "" when no finished cell has a curve of two points; the leader at the largest budget is
    tested against the runner-up on `records` where both ended at the same point; `pairs` (s1x/report/pairwise.py)
    give the real differences."""
    sentences, ends = [], []
    benchmarks = sorted({m.series.benchmark for m in table.measures if m.series.point is not None})
    for benchmark in benchmarks:
        for row in table.finished():
            points = _points(row, benchmark)
            if len(points) < 2:
                continue
            (t0, a0, _, h0, l0), (t1, a1, lo1, _, l1) = points[0], points[-1]
            overlap = "overlap" if lo1 <= h0 else "do not overlap"
            scaling = row.get(Series(benchmark), "scaling")  # None where every point thought as long
            slope = "–" if scaling is None else f"{100_000 * scaling:.2f} %/1K tokens"
            sentences.append(
                f"{row.label} on {benchmark}: accuracy goes from {_percent(a0)} at {t0:.0f} thinking tokens "
                f"({_describe(l0)}) to {_percent(a1)} at {t1:.0f} ({_describe(l1)}), {100 * (a1 - a0):+.1f} points; "
                f"the 95 % intervals at the two ends {overlap}; Scaling {slope}.")
            ends.append((points[-1], row, benchmark))
    if len(ends) > 1:
        for benchmark in benchmarks:
            rows = sorted((end for end in ends if end[2] == benchmark), key=lambda end: end[0][1], reverse=True)
            if len(rows) > 1:
                (_, best, low, _, point), leader, _ = rows[0]
                (_, second, _, high, other_point), other, _ = rows[1]
                overlap = "overlap" if low <= high else "do not overlap"
                paired = _paired(records, leader, other, benchmark, point) if point == other_point else ""
                sentences.append(f"At the largest budget, {leader.label} leads on {benchmark} with {_percent(best)} "
                                 f"against {_percent(second)} for {other.label} (intervals {overlap}{paired}).")
    if sentences:
        sentences += _real_differences(list(pairs))
    return " ".join(sentences)
