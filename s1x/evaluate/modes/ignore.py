"""budget=ignore k: the first k delimiters are dropped, each followed by the extend string (the paper's Table 4)."""
from dataclasses import dataclass
from typing import Optional

from s1x.config import BudgetMode
from s1x.evaluate.budget import Rule, SampleState
from s1x.evaluate.modes.mode import Mode, Prefixed


@dataclass
class IgnoreBudget(Prefixed):
    times: Optional[int] = None  # k: the end of thinking is suppressed k times


class IgnoreStops(Rule):
    def stops_extended_below(self, state: SampleState, room: int) -> int:
        return max(0, room) if state.extensions < state.policy.times else 0

    def must_continue(self, state: SampleState) -> bool:
        return state.extensions < state.policy.times


MODE = Mode(BudgetMode.ignore, IgnoreBudget, amounts=("times",), positive=("times",),
            extends=lambda budget: True, policy=lambda tokenizer, budget: dict(times=budget.times), rule=IgnoreStops())
