"""budget=token_conditional N: the budget is stated in the prompt, nothing is forced (the paper's section 3.1)."""
from dataclasses import dataclass
from typing import Optional

from s1x.config import BudgetMode
from s1x.evaluate.modes.mode import Mode, Prefixed


@dataclass
class TokenConditionalBudget(Prefixed):
    tokens: Optional[int] = None  # N: the prompt asks for at most N thinking tokens

MODE = Mode(BudgetMode.token_conditional, TokenConditionalBudget, amounts=("tokens",), positive=("tokens",),
            bounds=lambda budget: [None, budget.tokens],
            instruction=lambda budget: f"Think for up to {budget.tokens} tokens.")
