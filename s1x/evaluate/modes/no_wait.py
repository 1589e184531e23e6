"""budget=no_wait: thinking never generates a reflection word; every token that reads as one of budget.suppress is
masked while thinking (the answer is free). Wang et al. 2025, "Wait, We Don't Need to 'Wait'!"."""
from dataclasses import dataclass, field

from s1x.config import BudgetMode
from s1x.evaluate.modes.mode import Mode, Prefixed
from s1x.evaluate.vocabulary import word_token_ids


@dataclass
class NoWaitBudget(Prefixed):
    suppress: list[str] = field(default_factory=list)  # words whose tokens thinking never generates

MODE = Mode(BudgetMode.no_wait, NoWaitBudget,
            checks=lambda budget, eval_cfg: [(bool(budget.suppress),
                                              f"budget=no_wait: budget.suppress must list the words to suppress, got {budget.suppress}")],
            policy=lambda tokenizer, budget: dict(suppress_ids=word_token_ids(tokenizer, budget.suppress)))
