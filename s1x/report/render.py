"""The table rendered as Markdown, CSV (plain numbers) and LaTeX (booktabs, shaped like the paper's tables)."""
from __future__ import annotations

import csv
import io
from itertools import groupby

from s1x.report.table import CURVE_FIELDS, FIELDS, Measure, Row, Table


def _seed_spread(row: Row, measure: Measure) -> str:
    """' mean ± std over seeds' of an accuracy where the cell ran eval.seeds, else ''."""
    mean, std = (row.get(measure.series, f"accuracy_seed_{what}") for what in ("mean", "std"))
    return "" if std is None else f"; seeds {measure.show(mean)} ± {measure.show(std)}"


def _markdown_value(row: Row, measure: Measure) -> str:
    """Accuracy with its pooled 95 % interval (and, over several seeds, their mean ± std); every other measure as it is."""
    shown = measure.show(row.values.get(measure))
    low, high = (row.get(measure.series, f"accuracy_ci95_{end}") for end in ("low", "high"))
    if measure.field != "accuracy" or low is None:
        return shown
    return f"{shown} ({measure.show(low)}–{measure.show(high)}{_seed_spread(row, measure)})"


def render_markdown(table: Table) -> str:
    shown = [m for m in table.measures if m.field in FIELDS]
    header = ["cell", "swept" if table.axes else "overrides", "status", *(m.header for m in shown)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.rows:
        status = f"failed: {row.error[:160]}" if row.status == "failed" else row.status
        cells = [row.dir, row.label, status, *(_markdown_value(row, m) for m in shown)]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def csv_columns(table: Table) -> list[str]:
    return ["cell", "overrides", *table.axes, "status", "error", *(m.key for m in table.measures)]


def csv_rows(table: Table) -> list[list]:
    return [[row.dir, " ".join(row.overrides), *row.axis.values(), row.status, row.error,
             *(row.values.get(m) for m in table.measures)] for row in table.rows]


def csv_text(columns: list[str], rows: list[list]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue()


def render_csv(table: Table) -> str:
    return csv_text(csv_columns(table), csv_rows(table))


TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "–": "--"}


def tex_escape(text: str) -> str:
    return "".join(TEX_SPECIAL.get(char, char) for char in text)


def _tex_header(measure: Measure) -> tuple[str, str]:
    """(spanning group, column): accuracy and tokens are grouped by quantity, as the paper's tables; curves by benchmark."""
    quantity = FIELDS[measure.field][0]
    if measure.field in CURVE_FIELDS:
        return measure.series.label, quantity
    return quantity[0].upper() + quantity[1:], measure.series.label


def _tex_value(row: Row, measure: Measure) -> str:
    """A measure's value; an accuracy over several seeds with their standard deviation."""
    shown = tex_escape(measure.show(row.values.get(measure)))
    std = row.get(measure.series, "accuracy_seed_std") if measure.field == "accuracy" else None
    return shown if std is None else rf"{shown} $\pm$ {measure.show(std)}"


def render_latex(table: Table, title: str) -> str:
    shown = [m for m in table.measures if m.field in FIELDS and m.series.point is None]
    labels = table.axes or ["run"]
    width = max(len(shown), 1)  # with no measures at all, one column holds each cell's status
    lines = [f"% s1x report: {title}", rf"\begin{{tabular}}{{{'l' * len(labels)}{'r' * width}}}", r"\toprule"]
    groups = [(group, len(list(members))) for group, members in groupby(shown, key=lambda m: _tex_header(m)[0])]
    if groups:
        lines.append("& " * len(labels) + " & ".join(rf"\multicolumn{{{n}}}{{c}}{{{tex_escape(g)}}}" for g, n in groups) + r" \\")
        start, rules = len(labels) + 1, []
        for _, n in groups:
            rules.append(rf"\cmidrule(lr){{{start}-{start + n - 1}}}")
            start += n
        lines.append(" ".join(rules))
    columns = [_tex_header(m)[1] for m in shown] or ["status"]
    lines += [" & ".join(tex_escape(c) for c in labels + columns) + r" \\", r"\midrule"]
    for row in table.rows:
        label = row.axis_values() or [row.label]
        if row.status == "done":
            cells = [_tex_value(row, m) for m in shown] or ["done"]
        else:
            cells = [rf"\multicolumn{{{width}}}{{c}}{{{tex_escape(row.status)}}}"]
        lines.append(" & ".join([tex_escape(c) for c in label] + cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def render_method_markdown(methods: Table) -> str:
    lines = ["| method | " + " | ".join(m.header for m in methods.measures) + " |",
             "|" + "---|" * (len(methods.measures) + 1)]
    for row in methods.rows:
        lines.append("| " + " | ".join([row.axis["method"], *(m.show(row.values.get(m)) for m in methods.measures)]) + " |")
    return "\n".join(lines) + "\n"
