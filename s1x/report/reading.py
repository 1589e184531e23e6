"""A paragraph that reads a report's scaling curves in words: how far accuracy moves with thinking, whether
the 95 % intervals at the curve's two ends overlap, and which cell is best at its largest budget.

Only what the numbers say, with the numbers: a reader can check each sentence against the table.
"""
from __future__ import annotations

from s1x.report.table import Row, Table, split_cap


def _points(row: Row, benchmark: str) -> list[tuple[float, float, float, float, str]]:
    """(thinking tokens, accuracy, low, high, point label) of each budget=scale point, by thinking tokens."""
    points = []
    for key, accuracy in row.values.items():
        name, field = key.rsplit(".", 1)
        base, point = split_cap(name)
        if field == "accuracy" and base == benchmark and point is not None:
            label = f"cap {point[1]}" if point[0] == 0 else f"{point[1]} extension(s)" if point[1] else "its own ending"
            points.append((row.values[f"{name}.mean_thinking_tokens"], accuracy, row.values[f"{name}.accuracy_ci95_low"],
                           row.values[f"{name}.accuracy_ci95_high"], label))
    return sorted(points)


def _percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def reading(table: Table) -> str:
    """The paragraph, or "" when no finished cell has a curve of two points."""
    sentences, ends = [], []
    benchmarks = sorted({split_cap(m.benchmark)[0] for m in table.measures if m.per_cap})
    for benchmark in benchmarks:
        for row in table.finished():
            points = _points(row, benchmark)
            if len(points) < 2:
                continue
            (t0, a0, _, h0, l0), (t1, a1, lo1, _, l1) = points[0], points[-1]
            overlap = "overlap" if lo1 <= h0 else "do not overlap"
            scaling = row.values.get(f"{benchmark}.scaling")  # None where every point thought as long
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
