"""budget=max N: thinking is requested at most N tokens at a time, counted across every round; when it reaches N
the delimiter and the answer cue are forced (a cap: the paper's budget forcing, shortening)."""
from dataclasses import dataclass
from typing import Optional

from s1x.config import BudgetMode
from s1x.evaluate.budget import Rule, SampleState
from s1x.evaluate.modes.mode import Mode, Prefixed


@dataclass
class MaxBudget(Prefixed):
    tokens: Optional[int] = None  # N: thinking is capped at N tokens


class Cap(Rule):
    def thinking_left(self, state: SampleState) -> int:
        return min(super().thinking_left(state), state.policy.tokens - state.thinking_tokens)

    def reached_budget(self, state: SampleState) -> bool:
        return state.thinking_tokens >= state.policy.tokens


MODE = Mode(BudgetMode.max, MaxBudget, amounts=("tokens",), positive=("tokens",),
            bounds=lambda budget: [None, budget.tokens],
            policy=lambda tokenizer, budget: dict(tokens=budget.tokens), rule=Cap())
