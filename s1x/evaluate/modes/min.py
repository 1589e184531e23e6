"""budget=min N: a delimiter before N thinking tokens is dropped and the extend string appended (the paper's budget
forcing, lengthening)."""
from dataclasses import dataclass
from typing import Optional

from s1x.config import BudgetMode
from s1x.evaluate.budget import Rule, SampleState
from s1x.evaluate.modes.mode import Mode, Prefixed


@dataclass
class MinBudget(Prefixed):
    tokens: Optional[int] = None  # N: a stop before N thinking tokens is extended


class Floor(Rule):
    def stops_extended_below(self, state: SampleState, room: int) -> int:
        return max(0, min(state.policy.tokens - state.thinking_tokens, room))

    def must_continue(self, state: SampleState) -> bool:
        return state.thinking_tokens < state.policy.tokens


MODE = Mode(BudgetMode.min, MinBudget, amounts=("tokens",), positive=("tokens",),
            checks=lambda budget, eval_cfg: [(
                eval_cfg.max_thinking_tokens >= budget.tokens,
                f"budget.tokens ({budget.tokens}) exceeds eval.max_thinking_tokens ({eval_cfg.max_thinking_tokens})")],
            extends=lambda budget: True, bounds=lambda budget: [budget.tokens, None],
            policy=lambda tokenizer, budget: dict(tokens=budget.tokens), rule=Floor())
