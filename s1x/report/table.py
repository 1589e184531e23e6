"""The report's table model, built once from the cells: a row per cell, a column per measure; and the
methods table (Control, Scaling, Performance of a method run at several budgets in separate cells)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from s1x.evaluate.metrics import BudgetRun, scaling_metrics
from s1x.report.cells import _override_values, swept_axes

NO_VALUE = "–"
# Overrides that only change how much thinking a budget allows: cells differing in them are one method's curve.
BUDGET_AMOUNTS = {"budget.tokens", "budget.times", "budget.caps", "budget.extensions", "budget.steps",
                  "budget.length_class"}
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


def split_cap(label: str) -> tuple[str, Optional[tuple[int, int]]]:
    """A budget=scale point's benchmark and its place on the curve: 'math500@4096' (cap 4096) ->
    ('math500', (0, 4096)), 'math500@+2' (two extensions, after every cap) -> ('math500', (1, 2));
    'math500' -> ('math500', None)."""
    name, at, point = label.rpartition("@")
    if not at or MAJORITY in label:
        return label, None
    if point.isdigit():
        return name, (0, int(point))
    if point.startswith("+") and point[1:].isdigit():
        return name, (1, int(point[1:]))
    return label, None


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


def _benchmark_order(label: str) -> tuple[str, tuple[int, int], int]:
    name, _, votes = label.partition(MAJORITY)
    base, point = split_cap(name)
    return base, point or (-1, 0), int(votes or 0)


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
