"""budget=ignore k: the first k delimiters are dropped, each followed by the extend string (the paper's Table 4)."""
from s1x.config import BudgetMode
from s1x.evaluate.budget import Rule, SampleState
from s1x.evaluate.modes.mode import Mode


class IgnoreStops(Rule):
    def stops_extended_below(self, state: SampleState, room: int) -> int:
        return max(0, room) if state.extensions < state.policy.times else 0

    def must_continue(self, state: SampleState) -> bool:
        return state.extensions < state.policy.times


MODE = Mode(BudgetMode.ignore, reads=("times", "think_prefix"), amounts=("times",), positive=("times",),
            extends=lambda budget: True, rule=IgnoreStops())
