"""What a budget mode declares, in its own module: everything the rest of s1x derives from it.

Config validation, store keys, the sweep's inert axes, the engines, the records and the report's grouping of one
method's cells into a curve read a mode only through its :class:`Mode` (s1x/evaluate/modes/__init__.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable, Optional

from s1x.config import BudgetConfig, BudgetMode, EvalConfig
from s1x.evaluate.budget import Rule, SampleState
from s1x.evaluate.results import Point

Check = tuple[str, bool, str]  # (key, holds, what it must be), the key under `budget.` unless it has a dot
Bounds = Optional[list[Optional[int]]]


def _no_checks(budget: BudgetConfig, eval_cfg: EvalConfig) -> list[Check]:
    return []


@dataclass
class Prefixed(BudgetConfig):
    """The settings of a mode whose prompt can start the thinking with a given text (token forcing)."""
    think_prefix: str = ""


@dataclass(frozen=True)
class Mode:
    name: BudgetMode
    # Its settings, the schema `budget=<mode>` composes (a key it lacks is a typo): only these enter its eval key.
    settings: type[BudgetConfig]
    # Of `reads`, those that only say how much it thinks: cells that differ in them are one method's curve.
    amounts: tuple[str, ...] = ()
    positive: tuple[str, ...] = ()  # of `reads`, those that must be > 0
    checks: Callable[[BudgetConfig, EvalConfig], list[Check]] = _no_checks
    extends: Callable[[BudgetConfig], bool] = lambda budget: False  # whether it appends the extend string
    in_rounds: bool = False  # decides between rounds, so an engine cannot force it inside one generation
    bounds: Callable[[BudgetConfig], Bounds] = lambda budget: None  # [min, max] thinking tokens, for Control
    instruction: Callable[[BudgetConfig], str] = lambda budget: ""  # what the prompt adds to the question
    policy: Callable[[object, BudgetConfig], dict] = lambda tokenizer, budget: {}  # its ForcingPolicy settings
    rule: Rule = field(default_factory=Rule)  # what it does at a stop, a cap and a transition
    draws: Callable[[BudgetConfig], int] = lambda budget: 1  # samples drawn at most per answer kept
    redraw: Callable[[SampleState, BudgetConfig], bool] = lambda state, budget: False  # draw this sample again
    # Its own sampling of a question's samples (deepconf: warm-up, threshold, consensus); None: every question
    # eval.samples times, each sample through `draws`/`redraw`. Gets (s1x/evaluate/generation.py's Draws, budget,
    # samples), returns the records.
    sample: Optional[Callable[[Any, BudgetConfig, int], list[dict]]] = None
    # Its own vote over a question's samples (deepconf's confidence-weighted one): {"accuracy", "thinking_tokens"}.
    vote: Optional[Callable[[list[dict]], dict[str, float]]] = None
    # The points of a whole scaling curve generated at once (s1x/evaluate/curve.py), in its order; None: one point.
    points: Optional[Callable[[BudgetConfig], list[Point]]] = None

    @property
    def reads(self) -> tuple[str, ...]:
        """The budget settings it reads, its own first."""
        names = [f.name for f in fields(self.settings) if f.name != "mode"]
        return tuple(sorted(names, key=lambda name: name == "think_prefix"))

    def __post_init__(self) -> None:
        assert set(self.amounts) <= set(self.reads) and set(self.positive) <= set(self.reads), self.name
