"""budget=entropy: a stop is dropped and the extend string appended, at most budget.times times, only where the
entropy of the model's next-token distribution there is above budget.threshold (nats); the engine measures it
between rounds, and each decision's value is recorded. The idea of entropix (xjdr, 2024)."""
from dataclasses import dataclass
from typing import Optional

from s1x.config import BudgetMode
from s1x.evaluate.budget import Measurer, Phase, Rule, SampleState
from s1x.evaluate.modes.mode import Mode, Prefixed


@dataclass
class EntropyBudget(Prefixed):
    threshold: Optional[float] = None  # a stop is extended where the next-token entropy (nats) is above it
    times: Optional[int] = None  # at most this many extensions


class ExtendWhereUncertain(Rule):
    def at_stop(self, state: SampleState) -> None:
        if state.extensions < state.policy.times and state.thinking_left() > 0:
            state.phase = Phase.measuring  # run_forcing has the entropy there measured
        else:
            super().at_stop(state)

    def measure(self, states: list[SampleState], engine: Measurer) -> None:
        for state, entropy in zip(states, engine.entropy([state.prompt_ids + state.generated for state in states])):
            self.decide(state, entropy)

    def decide(self, state: SampleState, entropy: float) -> None:
        """The model stopped where the next-token distribution has this entropy: above the threshold the stop is
        dropped and the extension appended, else thinking ends there."""
        state.entropies.append(entropy)
        if entropy > state.policy.threshold:
            state.phase = Phase.thinking
            state.extend()
        else:
            state.open_answer(state.policy.answer_open_ids)

    def extras(self, state: SampleState, decode) -> dict:
        return {"entropies": state.entropies}


MODE = Mode(BudgetMode.entropy, EntropyBudget, amounts=("threshold", "times"),
            positive=("times",),
            checks=lambda budget, eval_cfg: [(budget.threshold is not None and budget.threshold >= 0,
                                              f"budget=entropy: budget.threshold must be >= 0 (nats), got {budget.threshold}")],
            extends=lambda budget: True, in_rounds=True,
            policy=lambda tokenizer, budget: dict(threshold=budget.threshold, times=budget.times),
            rule=ExtendWhereUncertain())
