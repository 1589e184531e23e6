"""budget=step_conditional N: the prompt asks for at most N steps, one per line (the paper's section 3.1)."""
from dataclasses import dataclass
from typing import Optional

from s1x.config import BudgetMode
from s1x.evaluate.modes.mode import Mode, Prefixed


@dataclass
class StepConditionalBudget(Prefixed):
    steps: Optional[int] = None  # N: the prompt asks for at most N steps

MODE = Mode(BudgetMode.step_conditional, StepConditionalBudget, amounts=("steps",), positive=("steps",),
            instruction=lambda budget: f"Think for up to {budget.steps} steps, one step per line.")
