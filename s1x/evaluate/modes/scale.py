"""budget=scale: a whole scaling curve from one generation (s1x/evaluate/curve.py): max caps and, with
budget.extensions, points that ignore the end of thinking k times. Its prompt is the plain question, so it reads
no think_prefix."""
from dataclasses import dataclass, field

from s1x.config import BudgetConfig, BudgetMode
from s1x.evaluate.modes.mode import Mode
from s1x.evaluate.results import Point


@dataclass
class ScaleBudget(BudgetConfig):
    caps: list[int] = field(default_factory=list)  # the max caps of the curve
    extensions: list[int] = field(default_factory=list)  # points that ignore the end of thinking k times


def _checks(budget, eval_cfg):
    distinct = lambda values: len(set(values)) == len(values)  # noqa: E731
    return [
        (len(budget.caps) + len(budget.extensions) > 0,
         f"budget=scale: budget.caps or budget.extensions must give points, got {budget.caps}"),
        (all(c > 0 for c in budget.caps) and distinct(budget.caps),
         f"budget=scale: budget.caps must be distinct caps > 0, got {budget.caps}"),
        (min(budget.extensions, default=0) >= 0 and distinct(budget.extensions),
         f"budget=scale: budget.extensions must be distinct counts >= 0, got {budget.extensions}"),
        (eval_cfg.samples == 1, "budget=scale branches one greedy generation per cap; it takes eval.samples=1"),
    ]


def _points(budget) -> list[Point]:
    """Caps by size, then extensions."""
    return [Point(cap=cap) for cap in sorted(set(budget.caps))] + [Point(extensions=k) for k in sorted(set(budget.extensions))]


MODE = Mode(BudgetMode.scale, ScaleBudget, amounts=("caps", "extensions"), checks=_checks,
            extends=lambda budget: bool(budget.extensions), points=_points)
