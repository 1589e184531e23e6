"""budget=step_conditional N: the prompt asks for at most N steps, one per line (the paper's section 3.1)."""
from s1x.config import BudgetMode
from s1x.evaluate.modes.mode import Mode

MODE = Mode(BudgetMode.step_conditional, reads=("steps", "think_prefix"), amounts=("steps",), positive=("steps",),
            instruction=lambda budget: f"Think for up to {budget.steps} steps, one step per line.")
