"""Every pair of cells that differ in one swept axis, compared on the same problems at every series both have.

`data=random,diverse,s1k extend=wait,hmm` gives the data pairs at each extend value and the extend pairs at each
data value; a curve's cells are compared at each point they share. Each comparison is the report's one paired
test (s1x/report/paired.py: exact McNemar p, paired bootstrap interval), and the p-values are Holm-corrected for
how many the report makes, so "a real difference" means one under 0.05 after the correction.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

from s1x.evaluate.results import Series
from s1x.report.paired import PairedComparison, SweepRecords, compare_records, holm_adjusted
from s1x.report.render import csv_text, tex_escape
from s1x.report.table import Table
from s1x.report.verdict import SIGNIFICANCE, UNSET

CSV_COLUMNS = ["axis", "where", "series", "a", "b", "n", "accuracy_a", "accuracy_b", "difference",
               "difference_ci95_low", "difference_ci95_high", "a_only", "b_only", "p_value", "p_holm"]


@dataclass(frozen=True)
class CellPair:
    """Cell A against cell B, alike but for `axis` (A's value first in the sweep's order), on one series."""
    axis: str
    where: str  # the other swept axes' values both cells share: "extend=wait"
    series: Series
    a: str
    b: str
    paired: PairedComparison
    p_holm: float

    @property
    def real(self) -> bool:
        return self.p_holm < SIGNIFICANCE


def cell_pairs(table: Table, records: SweepRecords) -> list[CellPair]:
    """Each pair of finished cells that differ in exactly one swept axis, at each series both answered."""
    found: list[tuple] = []
    rows = table.finished()
    for axis in table.axes:
        others = [a for a in table.axes if a != axis]
        groups: dict[tuple, list] = {}
        for row in rows:
            groups.setdefault(tuple(row.axis[a] for a in others), []).append(row)
        for context, members in groups.items():
            where = " ".join(f"{a}={v}" for a, v in zip(others, context) if v is not None)
            for row_a, row_b in combinations(members, 2):
                for series in sorted(row_a.single_series() & row_b.single_series(), key=Series.order):
                    a, b = records.get(row_a.dir, series), records.get(row_b.dir, series)
                    if a and b:
                        found.append((axis, where, series, row_a.axis[axis] or UNSET, row_b.axis[axis] or UNSET,
                                      compare_records(a, b)))
    adjusted = holm_adjusted([paired.p_value for *_, paired in found])
    return [CellPair(*pair, p_holm) for pair, p_holm in zip(found, adjusted)]


def _interval(paired: PairedComparison) -> str:
    low, high = (100 * end for end in paired.difference_ci95)
    return f"{100 * paired.difference:+.1f} ({low:+.1f} to {high:+.1f})"


def render_pairs_markdown(pairs: list[CellPair]) -> str:
    lines = ["| axis | where | series | A | B | A (%) | B (%) | A - B, points (95 % interval) | A only / B only | p | p (Holm) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for pair in pairs:
        paired = pair.paired
        lines.append(f"| {pair.axis} | {pair.where or '-'} | {pair.series.label} | {pair.a} | {pair.b} | "
                     f"{100 * paired.accuracy_a:.1f} | {100 * paired.accuracy_b:.1f} | {_interval(paired)} | "
                     f"{paired.a_only} / {paired.b_only} | {paired.p_value:.2g} | "
                     f"{'**' if pair.real else ''}{pair.p_holm:.2g}{'**' if pair.real else ''} |")
    return "\n".join(lines) + (f"\n\nPaired by problem and sample: exact McNemar p on the discordant answers, a 95 % "
                               f"paired bootstrap interval over problems; p (Holm) corrects for the {len(pairs)} "
                               f"comparisons of this report, and a difference counts (bold) below {SIGNIFICANCE}.\n")


def render_pairs_csv(pairs: list[CellPair]) -> str:
    return csv_text(CSV_COLUMNS, [[pair.axis, pair.where, pair.series.label, pair.a, pair.b, *pair.paired.numbers(),
                                   pair.p_holm] for pair in pairs])


def render_pairs_latex(pairs: list[CellPair], title: str) -> str:
    lines = [f"% s1x paired comparisons: {title} (exact McNemar, Holm-corrected over {len(pairs)}; bold: below "
             f"{SIGNIFICANCE})", r"\begin{tabular}{lllllrrlrr}", r"\toprule",
             r"axis & where & series & A & B & A (\%) & B (\%) & A $-$ B, points (95\% interval) & $p$ & $p$ (Holm) \\",
             r"\midrule"]
    for pair in pairs:
        paired = pair.paired
        holm = f"{pair.p_holm:.2g}"
        cells = [tex_escape(c) for c in (pair.axis, pair.where or "-", pair.series.label, pair.a, pair.b)]
        cells += [f"{100 * paired.accuracy_a:.1f}", f"{100 * paired.accuracy_b:.1f}", tex_escape(_interval(paired)),
                  f"{paired.p_value:.2g}", rf"\textbf{{{holm}}}" if pair.real else holm]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"
