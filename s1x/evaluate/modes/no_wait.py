"""budget=no_wait: thinking never generates a reflection word; every token that reads as one of budget.suppress is
masked while thinking (the answer is free). Wang et al. 2025, "Wait, We Don't Need to 'Wait'!"."""
from s1x.config import BudgetMode
from s1x.evaluate.modes.mode import Mode
from s1x.evaluate.vocabulary import word_token_ids

MODE = Mode(BudgetMode.no_wait, reads=("suppress", "think_prefix"),
            checks=lambda budget, eval_cfg: [(bool(budget.suppress),
                                              f"budget=no_wait: budget.suppress must list the words to suppress, got {budget.suppress}")],
            policy=lambda tokenizer, budget: dict(suppress_ids=word_token_ids(tokenizer, budget.suppress)))
