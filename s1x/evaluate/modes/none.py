"""budget=none: no forcing; thinking ends where the model ends it, or at eval.max_thinking_tokens."""
from s1x.config import BudgetMode
from s1x.evaluate.modes.mode import Mode

MODE = Mode(BudgetMode.none, reads=("think_prefix",))
