"""The efficiency view of a comparison of test-time methods: every method's (mean thinking tokens, accuracy)
points on one plot with the Pareto front marked, and how many thinking tokens each method needs to reach the
accuracy of plain decoding (the cells whose budget is `none`, however chosen): tokens saved at equal accuracy.

A method is a cell's swept values less the budget's amount (as in the methods table), so a method run at
several budgets, in separate cells or as one budget=scale curve, is one line. Its tokens to reach a target are
read off that line: the first point at or above the target, interpolated linearly from the point before it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from s1x.report.table import Table, _method, scaling_panels

PLAIN_DECODING = "none"  # the budget preset of plain decoding
EFFICIENCY_PLOT = "efficiency.png"

Point = tuple[float, float]  # (mean thinking tokens, accuracy)


def pareto_front(points: list[Point]) -> list[Point]:
    """The points no other point beats on both counts (as few tokens or fewer, as accurate or more), by tokens."""
    front: list[Point] = []
    for tokens, accuracy in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or accuracy > front[-1][1]:
            front.append((tokens, accuracy))
    return front


def tokens_to_reach(points: list[Point], target: float) -> Optional[float]:
    """Thinking tokens at which a method's line first reaches `target` accuracy; None if it never does."""
    line = sorted(points)
    for i, (tokens, accuracy) in enumerate(line):
        if accuracy >= target:
            if i == 0 or line[i - 1][1] >= target:
                return tokens
            (t0, a0) = line[i - 1]
            return t0 + (target - a0) * (tokens - t0) / (accuracy - a0)
    return None


@dataclass(frozen=True)
class Saving:
    method: str
    best_accuracy: float
    tokens_needed: Optional[float]  # to reach plain decoding's accuracy; None: never reached
    tokens_saved: Optional[float]  # plain decoding's tokens minus tokens_needed


def savings(lines: dict[str, list[Point]], plain_method: Optional[str]) -> tuple[Optional[Point], list[Saving]]:
    """(plain decoding's point, each method's saving against it); no savings without plain decoding's line."""
    plain = lines.get(plain_method) if plain_method is not None else None
    if not plain:
        return None, []
    reference = max(plain, key=lambda p: p[1])
    found = []
    for method, points in lines.items():
        needed = tokens_to_reach(points, reference[1])
        found.append(Saving(method, max(a for _, a in points), needed, None if needed is None else reference[0] - needed))
    return reference, sorted(found, key=lambda s: (s.tokens_needed is None, s.tokens_needed or 0.0))


def render_savings(table: Table) -> str:
    """The Markdown section: per benchmark, plain decoding's point and each method's tokens at its accuracy."""
    parts = []
    plain_method = next((_method(row) for row in table.finished() if row.budget == PLAIN_DECODING), None)
    for benchmark, lines in scaling_panels(table).items():
        reference, found = savings(lines, plain_method)
        if reference is None:
            continue
        parts.append(f"Plain decoding ({plain_method}) on {benchmark}: {100 * reference[1]:.1f} % at "
                     f"{reference[0]:.1f} thinking tokens.\n")
        parts.append("| method | best accuracy (%) | thinking tokens to reach it | tokens saved |\n|---|---|---|---|")
        for s in found:
            needed = "not reached" if s.tokens_needed is None else f"{s.tokens_needed:.1f}"
            saved = "–" if s.tokens_saved is None else f"{s.tokens_saved:+.1f} ({100 * s.tokens_saved / reference[0]:+.0f} %)" \
                if reference[0] else f"{s.tokens_saved:+.1f}"
            parts.append(f"| {s.method or '(every cell)'} | {100 * s.best_accuracy:.1f} | {needed} | {saved} |")
        parts.append("")
    return "\n".join(parts)


def plot_efficiency(table: Table, path: Path) -> bool:
    """Every method's points, a panel per benchmark, the Pareto front over all of them marked; False (and no
    file) where no benchmark has two methods to compare."""
    panels = {b: lines for b, lines in scaling_panels(table).items() if len(lines) > 1}
    if not panels:
        return False
    from s1x.report.plots import _pyplot

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, (benchmark, lines) in zip(axes[0], panels.items()):
        for i, (method, points) in enumerate(lines.items()):  # past ten methods the colours repeat, the markers not
            tokens, accuracy = zip(*sorted(points))
            ax.plot(tokens, [100 * a for a in accuracy], color=f"C{i % 10}", marker="osD^v"[i // 10 % 5], alpha=0.8,
                    label=method or "(every cell)")
        front = pareto_front([p for points in lines.values() for p in points])
        ax.step([t for t, _ in front], [100 * a for _, a in front], where="post", color="black", linewidth=2,
                linestyle="--", label="Pareto front")
        ax.scatter([t for t, _ in front], [100 * a for _, a in front], s=120, facecolors="none", edgecolors="black")
        ax.set(title=benchmark, xlabel="mean thinking tokens", ylabel="accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
