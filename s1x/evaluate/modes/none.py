"""budget=none: no forcing; thinking ends where the model ends it, or at eval.max_thinking_tokens."""
from dataclasses import dataclass

from s1x.config import BudgetMode
from s1x.evaluate.modes.mode import Mode, Prefixed


@dataclass
class NoBudget(Prefixed):
    """Reads nothing but the think prefix."""


MODE = Mode(BudgetMode.none, NoBudget)
