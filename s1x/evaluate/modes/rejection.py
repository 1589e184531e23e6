"""budget=rejection N: every sample whose thinking exceeds N tokens is drawn again, up to budget.max_attempts
draws, keeping the last one when none fits (the paper's section 3.1; needs sampling)."""
from dataclasses import dataclass
from typing import Optional

from s1x.config import BudgetMode
from s1x.evaluate.modes.mode import Mode, Prefixed


@dataclass
class RejectionBudget(Prefixed):
    tokens: Optional[int] = None  # N: a sample thinking longer is drawn again
    max_attempts: int = 16  # samples drawn before keeping the last one

MODE = Mode(BudgetMode.rejection, RejectionBudget, amounts=("tokens",),
            positive=("tokens", "max_attempts"),
            checks=lambda budget, eval_cfg: [(eval_cfg.temperature > 0,
                                              "budget=rejection resamples, so it needs eval.temperature > 0")],
            bounds=lambda budget: [None, budget.tokens], draws=lambda budget: budget.max_attempts,
            redraw=lambda state, budget: state.thinking_tokens > budget.tokens)
