"""budget=token_conditional N: the budget is stated in the prompt, nothing is forced (the paper's section 3.1)."""
from s1x.config import BudgetMode
from s1x.evaluate.modes.mode import Mode

MODE = Mode(BudgetMode.token_conditional, reads=("tokens", "think_prefix"), amounts=("tokens",), positive=("tokens",),
            bounds=lambda budget: [None, budget.tokens],
            instruction=lambda budget: f"Think for up to {budget.tokens} tokens.")
