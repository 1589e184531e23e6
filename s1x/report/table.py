"""The report's table model, built once from the cells: a row per cell, a column per measure; and the
methods table (Control, Scaling, Performance of a method run at several budgets in separate cells)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from s1x.evaluate.metrics import BudgetRun, scaling_metrics
from s1x.evaluate.modes import amount_keys
from s1x.evaluate.results import Result, Series
from s1x.report.cells import _override_values, swept_axes

NO_VALUE = "–"
# Overrides that only change how much thinking a budget allows: cells differing in them are one method's curve.
BUDGET_AMOUNTS = amount_keys()
# The fields the Markdown and LaTeX tables show (the CSV has every field): field -> (header, display factor, decimals)
FIELDS = {
    "accuracy": ("accuracy (%)", 100, 1),
    "mean_thinking_tokens": ("thinking tokens", 1, 1),
    "control": ("Control (%)", 100, 1),
    "scaling": ("Scaling (%/1K tokens)", 100_000, 2),
    "performance": ("Performance (%)", 100, 1),
}
BENCHMARK_FIELDS = ["n", "accuracy", "accuracy_ci95_low", "accuracy_ci95_high", "mean_thinking_tokens"]
SEED_FIELDS = ["accuracy_seed_mean", "accuracy_seed_std"]  # columns only where a cell ran eval.seeds
CURVE_FIELDS = ["control", "scaling", "performance"]


@dataclass(frozen=True)
class Measure:
    """One numeric column: a field of one series' results, or of one benchmark's scaling curve (a plain series)."""
    series: Series
    field: str

    @property
    def key(self) -> str:
        """The CSV's (and W&B's) column name, for people: 'math500@16.accuracy'."""
        return f"{self.series.label}.{self.field}"

    @property
    def header(self) -> str:
        return f"{self.series.label} {FIELDS[self.field][0]}"

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
    values: dict[Measure, float]  # the measures this cell has
    budget_bounds: Optional[list[Optional[int]]] = None  # [min, max] thinking tokens its budget asked for
    budget: Optional[str] = None  # its budget preset (conf/budget/), however the sweep chose it

    @property
    def label(self) -> str:
        swept = " ".join(f"{k}={v}" for k, v in self.axis.items() if v is not None)
        return swept or " ".join(self.overrides) or "(defaults)"

    def axis_values(self) -> list[str]:
        return [NO_VALUE if value is None else value for value in self.axis.values()]

    def get(self, series: Series, field: str) -> Optional[float]:
        return self.values.get(Measure(series, field))

    def single_series(self) -> set[Series]:
        """The series where it has an accuracy of each sample on its own (not majority voting): what pairs."""
        return {m.series for m in self.values if m.field == "accuracy" and m.series.votes is None}


@dataclass
class Table:
    """Built once from the cells; every output renders it."""
    axes: list[str]
    measures: list[Measure]
    rows: list[Row]

    def finished(self) -> list[Row]:
        return [row for row in self.rows if row.status == "done"]

    def plain_series(self) -> list[Series]:
        """Benchmarks with an accuracy of their own: not at a budget=scale point, not a majority vote."""
        return [m.series for m in self.measures
                if m.field == "accuracy" and m.series.point is None and m.series.votes is None]


def _error_line(cell: dict) -> str:
    if cell["status"] != "failed":
        return ""
    return (cell.get("error", "").strip().splitlines() or ["unknown error"])[-1]


def _values(cell: dict) -> dict[Measure, float]:
    values = {}
    for result in map(Result.from_dict, cell.get("results", [])):
        values.update({Measure(result.series, field): value for field, value in result.values().items()})
    for name, curve in cell.get("scaling", {}).items():
        values.update({Measure(Series(name), field): curve[field] for field in CURVE_FIELDS})
    return values


def build_table(cells: list[dict]) -> Table:
    axes = swept_axes(cells)
    rows = []
    for cell in cells:
        given = _override_values(cell["overrides"])
        rows.append(Row(cell["dir"], cell["overrides"], {axis: given.get(axis) for axis in axes},
                        cell["status"], _error_line(cell), _values(cell), cell.get("budget_bounds"),
                        cell.get("choices", {}).get("budget") or given.get("budget")))
    # A scale cell's points follow their benchmark in cap order: embedded, embedded@32, embedded@128;
    # majority voting in vote order: embedded maj@1, embedded maj@2, embedded maj@4.
    series = sorted({m.series for row in rows for m in row.values if m.field == "accuracy"}, key=Series.order)
    curves = sorted({name for cell in cells for name in cell.get("scaling", {})})
    measures = [Measure(s, f) for f in BENCHMARK_FIELDS for s in series]
    measures += [Measure(s, f) for f in SEED_FIELDS for s in series if any(Measure(s, f) in row.values for row in rows)]
    measures += [Measure(Series(c), f) for c in curves for f in CURVE_FIELDS]
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
    benchmarks = table.plain_series()
    rows = []
    for method, cells in methods.items():
        values = {}
        for benchmark in benchmarks:
            points = [cell for cell in cells if cell.get(benchmark, "accuracy") is not None]
            if len(points) < 2:
                continue
            bounds = [cell.budget_bounds or [None, None] for cell in points]
            runs = [BudgetRun(cell.get(benchmark, "mean_thinking_tokens"), cell.get(benchmark, "accuracy"), *bound)
                    for cell, bound in zip(points, bounds)]
            curve = scaling_metrics(runs)
            if any(cell.budget_bounds is None for cell in points):
                del curve["control"]
            values.update({Measure(benchmark, field): value for field, value in curve.items() if value is not None})
        if values:
            rows.append(Row(method, [], {"method": method or "(every cell)"}, "done", "", values))
    measures = [Measure(b, f) for b in benchmarks for f in CURVE_FIELDS if any(Measure(b, f) in r.values for r in rows)]
    return Table(["method"], measures, rows)


def scaling_panels(table: Table) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """benchmark -> method -> (mean thinking tokens, accuracy) points, from the finished cells."""
    panels: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for row in table.finished():
        method = _method(row)
        for measure in table.measures:
            series = measure.series
            if measure.field == "accuracy" and measure in row.values:
                point = (row.get(series, "mean_thinking_tokens"), row.values[measure])
                line = f"{method} {'vote' if series.mode_vote else 'majority voting'}".strip() if series.votes else method
                panels.setdefault(series.benchmark, {}).setdefault(line, []).append(point)
    return panels
