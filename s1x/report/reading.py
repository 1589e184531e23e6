"""A paragraph that reads a report's scaling curves in words: how far accuracy moves with thinking, whether
the 95 % intervals at the curve's two ends overlap, and which cell is best at its largest budget.

Only what the numbers say, with the numbers: a reader can check each sentence against the table.
"""
from __future__ import annotations

from s1x.evaluate.results import Point, Series
from s1x.report.table import Row, Table


def _describe(point: Point) -> str:
    if point.cap is not None:
        return f"cap {point.cap}"
    return f"{point.extensions} extension(s)" if point.extensions else "its own ending"


def _points(row: Row, benchmark: str) -> list[tuple[float, float, float, float, str]]:
    """(thinking tokens, accuracy, low, high, point label) of each budget=scale point, by thinking tokens."""
    points = []
    for measure, accuracy in row.values.items():
        series = measure.series
        on_curve = series.point is not None and series.votes is None
        if measure.field == "accuracy" and series.benchmark == benchmark and on_curve:
            points.append((row.get(series, "mean_thinking_tokens"), accuracy, row.get(series, "accuracy_ci95_low"),
                           row.get(series, "accuracy_ci95_high"), _describe(series.point)))
    return sorted(points)


def _percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def reading(table: Table) -> str:
    """The paragraph, or "" when no finished cell has a curve of two points."""
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
                f"{row.label} on {benchmark}: accuracy goes from {_percent(a0)} at {t0:.0f} thinking tokens ({l0}) "
                f"to {_percent(a1)} at {t1:.0f} ({l1}), {100 * (a1 - a0):+.1f} points; the 95 % intervals at the two "
                f"ends {overlap}; Scaling {slope}.")
            ends.append((points[-1], row.label, benchmark))
    if len(ends) > 1:
        for benchmark in benchmarks:
            rows = sorted((end for end in ends if end[2] == benchmark), key=lambda end: end[0][1], reverse=True)
            if len(rows) > 1:
                (_, best, low, _, _), leader, _ = rows[0]
                (_, second, _, high, _), other, _ = rows[1]
                overlap = "overlap" if low <= high else "do not overlap"
                sentences.append(f"At the largest budget, {leader} leads on {benchmark} with {_percent(best)} against "
                                 f"{_percent(second)} for {other} (intervals {overlap}).")
    return " ".join(sentences)
