"""budget=schedule (AlphaOne, Zhang et al. 2025): thinking pauses at transition tokens too; at each one before the
alpha moment (budget.alpha x budget.tokens thinking tokens) the extend string is appended with a chance falling
linearly from budget.probability to 0 there, drawn from the sample's own seed; the first one after it ends
thinking with the answer cue (slow thinking turned into fast)."""
from dataclasses import dataclass
from typing import Optional

from s1x.config import BudgetMode
from s1x.evaluate.budget import Rule, SampleState
from s1x.evaluate.modes.mode import Mode, Prefixed
from s1x.evaluate.vocabulary import transition_token_ids


@dataclass
class ScheduleBudget(Prefixed):
    tokens: Optional[int] = None  # the model's usual thinking length
    alpha: float = 1.0  # AlphaOne's alpha; its moment is after alpha * tokens thinking tokens
    probability: Optional[float] = None  # an extension's chance at a transition at first, falling linearly to 0
    transition: str = "\n\n"  # a token holding this text is a transition point


class SlowThenFast(Rule):
    def at_pause(self, state: SampleState, body: list[int]) -> None:
        p = state.policy
        if not body or body[-1] not in p.transition_ids:
            super().at_pause(state, body)
        elif state.thinking_tokens >= p.alpha_tokens:  # after the alpha moment: the end
            state.capped = True
            state.open_answer(p.cap_ids)
        elif state.draws.random() < p.probability * (1 - state.thinking_tokens / p.alpha_tokens) and state.thinking_left() > 0:
            state.extend()


def _checks(budget, eval_cfg):
    return [(budget.probability is not None and 0 <= budget.probability <= 1,
             f"budget=schedule: budget.probability must be in [0, 1], got {budget.probability}"),
            (bool(budget.transition), f"budget=schedule: budget.transition must be the text of a transition point, "
                                      f"got {budget.transition!r}")]


MODE = Mode(BudgetMode.schedule, ScheduleBudget,
            amounts=("tokens", "alpha", "probability"), positive=("tokens", "alpha"), checks=_checks,
            extends=lambda budget: True, in_rounds=True,
            policy=lambda tokenizer, budget: dict(alpha_tokens=max(1, round(budget.alpha * budget.tokens)),
                                                  probability=budget.probability,
                                                  transition_ids=transition_token_ids(tokenizer, budget.transition)),
            rule=SlowThenFast())
