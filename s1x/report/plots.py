"""The report's figures: which plots the table has data for (`write_plots`), drawn from plain numbers."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from s1x.evaluate.results import Series
from s1x.report.table import Row, Table, scaling_panels

SCALING_PLOT, BARS_PLOT = "scaling.png", "accuracy.png"

Point = tuple[float, float]  # (mean thinking tokens, accuracy)


def _pyplot():
    """pyplot on the Agg backend, imported on first use: every cell imports the report module."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_scaling(panels: dict[str, dict[str, list[Point]]], path: Path) -> None:
    """Accuracy against mean thinking tokens: one panel per benchmark, one line per method."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (benchmark, lines) in zip(axes[0], panels.items()):
        for label, points in lines.items():
            tokens, accuracy = zip(*sorted(points))
            ax.plot(tokens, [100 * a for a in accuracy], marker="o", label=label)
        ax.set(title=benchmark, xlabel="mean thinking tokens", ylabel="accuracy (%)")
        ax.grid(alpha=0.3)
        if len(lines) > 1:
            ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_accuracy_bars(groups: list[str], bars: dict[str, list[tuple[float, float, float] | None]], xlabel: str,
                       path: Path) -> None:
    """Grouped bars: accuracy per swept value (group), one bar per benchmark, with the 95 % interval.

    bars[benchmark][i] is (accuracy, low, high) of groups[i], or None where that cell has no value."""
    plt = _pyplot()
    width = 0.8 / len(bars)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(groups) * len(bars)), 4))
    for offset, (benchmark, values) in enumerate(bars.items()):
        shown = [(i, v) for i, v in enumerate(values) if v is not None]
        ax.bar([i + offset * width for i, _ in shown], [100 * acc for _, (acc, _, _) in shown], width,
               yerr=[[100 * (acc - low) for _, (acc, low, _) in shown], [100 * (high - acc) for _, (acc, _, high) in shown]],
               capsize=3, label=benchmark)
    tilt = max(map(len, groups)) > 12  # long labels would overlap
    ax.set_xticks([i + (len(bars) - 1) * width / 2 for i in range(len(groups))], groups,
                  rotation=20 if tilt else 0, ha="right" if tilt else "center")
    ax.set(xlabel=xlabel, ylabel="accuracy (%)", ylim=(0, 100))
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _interval(row: Row, series: Series) -> Optional[tuple[float, float, float]]:
    if row.get(series, "accuracy") is None:
        return None
    return tuple(row.get(series, field) for field in ("accuracy", "accuracy_ci95_low", "accuracy_ci95_high"))


def write_plots(table: Table, out_dir: Path) -> list[Path]:
    """The plots their data exists for; returns their paths."""
    written = []
    panels = scaling_panels(table)
    if any(len(points) > 1 for lines in panels.values() for points in lines.values()):
        plot_scaling(panels, out_dir / SCALING_PLOT)
        written.append(out_dir / SCALING_PLOT)
    benchmarks = table.plain_series()
    rows = [row for row in table.finished() if any(_interval(row, b) for b in benchmarks)]
    if rows:
        one_axis = len(table.axes) == 1  # then its values label the bars, and its name the x axis
        plot_accuracy_bars([row.axis_values()[0] if one_axis else row.label for row in rows],
                           {b.benchmark: [_interval(row, b) for row in rows] for b in benchmarks},
                           table.axes[0] if one_axis else "", out_dir / BARS_PLOT)
        written.append(out_dir / BARS_PLOT)
    return written
