"""The report stage: tables and plots over the cells of a run or sweep directory.

Usage: python -m s1x.report SWEEP_DIR   (also the last stage of every run and sweep)

It writes into SWEEP_DIR:
- report.md     the table (a failed cell's status carries its error) and the plots;
- report.csv    one row per cell, failed and missing ones included: directory, overrides, one column
                per swept override, status, error, then per benchmark n, accuracy, its 95 % interval
                and mean thinking tokens, and per scaling curve Control, Scaling, Performance, as
                plain numbers (accuracies as fractions, Scaling in accuracy per thinking token),
                empty where a cell has none;
- report.tex    a booktabs tabular shaped like the paper's tables (\\input it beside
                \\usepackage{booktabs}): a row per swept value, accuracy and thinking tokens per
                benchmark, Control/Scaling/Performance per curve; a cell that did not finish spans
                its row with its status. budget=scale's per-cap points are in the plot, CSV and Markdown.
                A second table has a row per method run at two budgets or more in separate cells
                (budget=token_conditional budget.tokens=64,128: the paper's Table 3) and its Control,
                Scaling and Performance per benchmark, also in the Markdown;
                a cell with eval.samples > 1 adds majority voting over its first k samples as the
                columns of a benchmark "NAME maj@k" (accuracy, thinking tokens of the k samples together);
- scaling.png   accuracy against mean thinking tokens, a panel per benchmark and a line per method:
                cells that differ only in the budget's amount (budget.tokens, .times, .caps, ...) are
                one line, a budget=scale cell adds a point per cap, and majority voting is a line of
                its own (the paper's parallel scaling against budget forcing's sequential scaling);
                written when a line has two points;
- accuracy.png  accuracy per swept value and benchmark with 95 % intervals; written when a finished
                cell has a plain (not per-cap) benchmark accuracy.

Rows are labelled by the swept axis: the overrides whose values differ between cells. A cell is a
directory with a cell.json, or one Hydra started (.hydra/overrides.yaml) that never wrote it: that
one is `missing`. Cells that did not finish are in every table and in no plot.

W&B: the report goes where its cells went. When a cell ran with logger=wandb (its
resolved_config.yaml says so), the report is logged as one run with job_type "report" in the same
project and group (the directory's name, as the cells' runs): the CSV's table as a wandb.Table and
the plots as images. Each rendering, `python -m s1x.report` included, logs a new report run, as a
rerun stage would; WANDB_MODE=disabled turns it off.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import sys
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from s1x.config import LoggerConfig, LoggerKind
from s1x.metrics import BudgetRun, scaling_metrics
from s1x.pipeline import CELL_FILE
from s1x.plots import plot_accuracy_bars, plot_scaling
from s1x.tracking import log_report

REPORT_FILE, CSV_FILE, TEX_FILE = "report.md", "report.csv", "report.tex"
SCALING_PLOT, BARS_PLOT = "scaling.png", "accuracy.png"
NO_VALUE = "–"
# Overrides that only change how much thinking a budget allows: cells differing in them are one method's curve.
BUDGET_AMOUNTS = {"budget.tokens", "budget.times", "budget.caps", "budget.steps", "budget.length_class"}
# The fields the Markdown and LaTeX tables show (the CSV has every field): field -> (header, display factor, decimals)
FIELDS = {
    "accuracy": ("accuracy (%)", 100, 1),
    "mean_thinking_tokens": ("thinking tokens", 1, 1),
    "control": ("Control (%)", 100, 1),
    "scaling": ("Scaling (%/1K tokens)", 100_000, 2),
    "performance": ("Performance (%)", 100, 1),
}
BENCHMARK_FIELDS = ["n", "accuracy", "accuracy_ci95_low", "accuracy_ci95_high", "mean_thinking_tokens"]
CURVE_FIELDS = ["control", "scaling", "performance"]


MAJORITY = " maj@"  # 'math500 maj@4': majority voting over each question's first 4 samples


def split_cap(label: str) -> tuple[str, Optional[int]]:
    """'math500@4096' (a budget=scale point) -> ('math500', 4096); 'math500' -> ('math500', None)."""
    name, at, cap = label.rpartition("@")
    return (name, int(cap)) if at and cap.isdigit() and MAJORITY not in label else (label, None)


@dataclass(frozen=True)
class Measure:
    """One numeric column: a field of one benchmark's metrics, or of one benchmark's scaling curve."""
    benchmark: str
    field: str

    @property
    def key(self) -> str:
        return f"{self.benchmark}.{self.field}"

    @property
    def header(self) -> str:
        return f"{self.benchmark} {FIELDS[self.field][0]}"

    @property
    def per_cap(self) -> bool:
        return split_cap(self.benchmark)[1] is not None

    def show(self, value: Optional[float]) -> str:
        if value is None:
            return NO_VALUE
        _, factor, decimals = FIELDS[self.field]
        return f"{factor * value:.{decimals}f}"


@dataclass
class Row:
    dir: str
    overrides: list[str]
    axis: dict[str, Optional[str]]  # swept override -> this cell's value (None: the cell does not set it)
    status: str  # done, failed, missing, or running (killed, or not finished yet)
    error: str  # the last line of a failed cell's traceback
    values: dict[str, float]  # Measure.key -> number, for the measures this cell has
    budget_bounds: Optional[list[Optional[int]]] = None  # [min, max] thinking tokens its budget asked for

    @property
    def label(self) -> str:
        swept = " ".join(f"{k}={v}" for k, v in self.axis.items() if v is not None)
        return swept or " ".join(self.overrides) or "(defaults)"

    def axis_values(self) -> list[str]:
        return [NO_VALUE if value is None else value for value in self.axis.values()]


@dataclass
class Table:
    """Built once from the cells; every output renders it."""
    axes: list[str]
    measures: list[Measure]
    rows: list[Row]

    def finished(self) -> list[Row]:
        return [row for row in self.rows if row.status == "done"]

    def plain_benchmarks(self) -> list[str]:
        """Benchmarks with an accuracy of their own: not a budget=scale point, not a majority vote."""
        return [m.benchmark for m in self.measures
                if m.field == "accuracy" and not m.per_cap and MAJORITY not in m.benchmark]


def _natural_order(relative: Path) -> tuple[str, ...]:
    return tuple(part.zfill(9) if part.isdigit() else part for part in relative.parts)


def collect_cells(sweep_dir: Path) -> list[dict]:
    """Each cell's cell.json, plus a `missing` cell for each directory Hydra started that never wrote one."""
    sweep_dir = Path(sweep_dir)
    dirs = {p.parent for p in sweep_dir.rglob(CELL_FILE)}
    dirs |= {p.parent.parent for p in sweep_dir.rglob(".hydra/overrides.yaml")}
    cells = []
    for cell_dir in sorted(dirs, key=lambda d: _natural_order(d.relative_to(sweep_dir))):
        if (cell_dir / CELL_FILE).exists():
            cell = json.loads((cell_dir / CELL_FILE).read_text())
        else:
            cell = {"overrides": list(OmegaConf.load(cell_dir / ".hydra" / "overrides.yaml")), "status": "missing"}
        cell["dir"] = str(cell_dir.relative_to(sweep_dir))
        cells.append(cell)
    return cells


def _override_values(overrides: list[str]) -> dict[str, str]:
    return {key: value for key, _, value in (o.partition("=") for o in overrides)}


def swept_axes(cells: list[dict]) -> list[str]:
    """The override keys whose values differ between cells (absent counts as a value), in first-seen order."""
    given = [_override_values(cell["overrides"]) for cell in cells]
    keys = list(dict.fromkeys(key for values in given for key in values))
    return [key for key in keys if len({values.get(key) for values in given}) > 1]


def _error_line(cell: dict) -> str:
    if cell["status"] != "failed":
        return ""
    return (cell.get("error", "").strip().splitlines() or ["unknown error"])[-1]


def _values(cell: dict) -> dict[str, float]:
    values = {}
    for name, metrics in cell.get("metrics", {}).items():
        low, high = metrics["accuracy_ci95"]
        values.update({f"{name}.n": metrics["n"], f"{name}.accuracy": metrics["accuracy"],
                       f"{name}.accuracy_ci95_low": low, f"{name}.accuracy_ci95_high": high,
                       f"{name}.mean_thinking_tokens": metrics["mean_thinking_tokens"]})
        for votes, point in metrics.get("majority", {}).items():
            label = f"{name}{MAJORITY}{votes}"
            values.update({f"{label}.n": metrics["n"], f"{label}.accuracy": point["accuracy"],
                           f"{label}.mean_thinking_tokens": point["thinking_tokens"]})
    for name, curve in cell.get("scaling", {}).items():
        values.update({f"{name}.{field}": curve[field] for field in CURVE_FIELDS})
    return values


def _benchmark_order(label: str) -> tuple[str, int, int]:
    name, _, votes = label.partition(MAJORITY)
    base, cap = split_cap(name)
    return base, cap or 0, int(votes or 0)


def build_table(cells: list[dict]) -> Table:
    axes = swept_axes(cells)
    rows = []
    for cell in cells:
        given = _override_values(cell["overrides"])
        rows.append(Row(cell["dir"], cell["overrides"], {axis: given.get(axis) for axis in axes},
                        cell["status"], _error_line(cell), _values(cell), cell.get("budget_bounds")))
    # A scale cell's points follow their benchmark in cap order: embedded, embedded@32, embedded@128;
    # majority voting in vote order: embedded maj@1, embedded maj@2, embedded maj@4.
    benchmarks = sorted({key.rpartition(".")[0] for row in rows for key in row.values if key.endswith(".accuracy")},
                        key=_benchmark_order)
    curves = sorted({name for cell in cells for name in cell.get("scaling", {})})
    measures = [Measure(b, f) for f in BENCHMARK_FIELDS for b in benchmarks]
    measures += [Measure(c, f) for c in curves for f in CURVE_FIELDS]
    return Table(axes, measures, rows)


def _markdown_value(row: Row, measure: Measure) -> str:
    """Accuracy with its 95 % interval; every other measure as it is."""
    shown = measure.show(row.values.get(measure.key))
    if measure.field != "accuracy" or f"{measure.benchmark}.accuracy_ci95_low" not in row.values:
        return shown
    low, high = (row.values[f"{measure.benchmark}.accuracy_ci95_{end}"] for end in ("low", "high"))
    return f"{shown} ({measure.show(low)}–{measure.show(high)})"


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
             *(row.values.get(m.key) for m in table.measures)] for row in table.rows]


def render_csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(csv_columns(table))
    writer.writerows(csv_rows(table))
    return out.getvalue()


TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "–": "--"}


def tex_escape(text: str) -> str:
    return "".join(TEX_SPECIAL.get(char, char) for char in text)


def _tex_header(measure: Measure) -> tuple[str, str]:
    """(spanning group, column): accuracy and tokens are grouped by quantity, as the paper's tables; curves by benchmark."""
    quantity = FIELDS[measure.field][0]
    if measure.field in CURVE_FIELDS:
        return measure.benchmark, quantity
    return quantity[0].upper() + quantity[1:], measure.benchmark


def render_latex(table: Table, title: str) -> str:
    shown = [m for m in table.measures if m.field in FIELDS and not m.per_cap]
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
            cells = [tex_escape(m.show(row.values.get(m.key))) for m in shown] or ["done"]
        else:
            cells = [rf"\multicolumn{{{width}}}{{c}}{{{tex_escape(row.status)}}}"]
        lines.append(" & ".join([tex_escape(c) for c in label] + cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _method(row: Row) -> str:
    """A cell's swept values other than the budget's amount: cells of one method differ only in that."""
    return " ".join(f"{k}={v}" for k, v in row.axis.items() if v is not None and k.lstrip("+~") not in BUDGET_AMOUNTS)


def method_table(table: Table) -> Table:
    """A row per method that finished at two budgets or more, with Control, Scaling and Performance per
    benchmark over its cells. Control is left out where a cell's budget bounds no thinking tokens."""
    methods: dict[str, list[Row]] = {}
    for row in table.finished():
        methods.setdefault(_method(row), []).append(row)
    benchmarks = table.plain_benchmarks()
    rows = []
    for method, cells in methods.items():
        values = {}
        for benchmark in benchmarks:
            points = [cell for cell in cells if f"{benchmark}.accuracy" in cell.values]
            if len(points) < 2:
                continue
            bounds = [cell.budget_bounds or [None, None] for cell in points]
            runs = [BudgetRun(cell.values[f"{benchmark}.mean_thinking_tokens"], cell.values[f"{benchmark}.accuracy"],
                              *bound) for cell, bound in zip(points, bounds)]
            curve = scaling_metrics(runs)
            if any(cell.budget_bounds is None for cell in points):
                del curve["control"]
            values.update({f"{benchmark}.{field}": value for field, value in curve.items() if value is not None})
        if values:
            rows.append(Row(method, [], {"method": method or "(every cell)"}, "done", "", values))
    measures = [Measure(b, f) for b in benchmarks for f in CURVE_FIELDS if any(f"{b}.{f}" in r.values for r in rows)]
    return Table(["method"], measures, rows)


def render_method_markdown(methods: Table) -> str:
    lines = ["| method | " + " | ".join(m.header for m in methods.measures) + " |",
             "|" + "---|" * (len(methods.measures) + 1)]
    for row in methods.rows:
        lines.append("| " + " | ".join([row.axis["method"], *(m.show(row.values.get(m.key)) for m in methods.measures)]) + " |")
    return "\n".join(lines) + "\n"


def scaling_panels(table: Table) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """benchmark -> method -> (mean thinking tokens, accuracy) points, from the finished cells."""
    panels: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for row in table.finished():
        method = _method(row)
        for measure in table.measures:
            if measure.field == "accuracy" and measure.key in row.values:
                point = (row.values[f"{measure.benchmark}.mean_thinking_tokens"], row.values[measure.key])
                name, majority, _ = measure.benchmark.partition(MAJORITY)
                line = f"{method} majority voting".strip() if majority else method
                panels.setdefault(split_cap(name)[0], {}).setdefault(line, []).append(point)
    return panels


def _interval(row: Row, benchmark: str) -> Optional[tuple[float, float, float]]:
    if f"{benchmark}.accuracy" not in row.values:
        return None
    return tuple(row.values[f"{benchmark}.{field}"] for field in ("accuracy", "accuracy_ci95_low", "accuracy_ci95_high"))


def write_plots(table: Table, out_dir: Path) -> list[Path]:
    """The plots their data exists for; returns their paths."""
    written = []
    panels = scaling_panels(table)
    if any(len(points) > 1 for lines in panels.values() for points in lines.values()):
        plot_scaling(panels, out_dir / SCALING_PLOT)
        written.append(out_dir / SCALING_PLOT)
    benchmarks = table.plain_benchmarks()
    rows = [row for row in table.finished() if any(_interval(row, b) for b in benchmarks)]
    if rows:
        one_axis = len(table.axes) == 1  # then its values label the bars, and its name the x axis
        plot_accuracy_bars([row.axis_values()[0] if one_axis else row.label for row in rows],
                           {b: [_interval(row, b) for row in rows] for b in benchmarks},
                           table.axes[0] if one_axis else "", out_dir / BARS_PLOT)
        written.append(out_dir / BARS_PLOT)
    return written


def wandb_logger(sweep_dir: Path, cells: list[dict]) -> Optional[LoggerConfig]:
    """The W&B project the cells logged to (logger=wandb in a cell's resolved_config.yaml), if any did."""
    for cell in cells:
        saved = sweep_dir / cell["dir"] / "resolved_config.yaml"
        logger = OmegaConf.load(saved).get("logger") if saved.exists() else None
        if logger is not None and logger.kind == LoggerKind.wandb.value:
            return LoggerConfig(LoggerKind.wandb, logger.project, logger.entity)
    return None


def write_report(sweep_dir: Path) -> Path:
    """Write the tables and plots into sweep_dir (and log them to W&B where its cells went); return report.md."""
    sweep_dir = Path(sweep_dir)
    cells = collect_cells(sweep_dir)
    table = build_table(cells)
    plots = write_plots(table, sweep_dir)
    (sweep_dir / CSV_FILE).write_text(render_csv(table))
    methods = method_table(table)
    tex, markdown = render_latex(table, str(sweep_dir)), render_markdown(table)
    if methods.rows:
        tex += "\n" + render_latex(methods, f"{sweep_dir}: methods across budgets")
        markdown += "\n## Methods across budgets\n\n" + render_method_markdown(methods)
    (sweep_dir / TEX_FILE).write_text(tex)
    figures = "".join(f"\n![{path.stem}]({path.name})\n" for path in plots)
    target = sweep_dir / REPORT_FILE
    target.write_text(f"# s1x report: {sweep_dir}\n\n" + markdown + figures)
    logger = wandb_logger(sweep_dir, cells)
    if logger is not None:
        log_report(logger, sweep_dir.name, sweep_dir, csv_columns(table), csv_rows(table), plots)
    return target


class ReportAtSweepEnd(Callback):
    """The report stage of a multirun (configured in conf/config.yaml): the report over the sweep.

    Failed cells do not stop a sweep; once the report is written, they (and cells that never
    finished) make it exit non-zero (SystemExit: Hydra turns ordinary exceptions from callbacks
    into warnings).
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: object) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        path = write_report(sweep_dir)
        logging.getLogger("s1x").info("report   %s\n%s", path, path.read_text())
        unfinished = [f"{c['dir']}: {c['status']}" for c in collect_cells(sweep_dir) if c["status"] != "done"]
        if unfinished:
            raise SystemExit(f"{len(unfinished)} cell(s) failed or did not finish ({', '.join(unfinished)}); "
                             f"see {path} and their logs")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m s1x.report SWEEP_DIR")
    print(write_report(Path(sys.argv[1])).read_text())
