"""budget=early_exit: every budget.probe_every thinking tokens a probe forces the answer cue on the thinking so far
and reads a short answer (a request that leaves the sample's tokens as they are); thinking ends once the last
budget.agree probes give the same answer. Dynasor (Fu et al. 2024), DEER (Yang et al. 2025)."""
from dataclasses import dataclass
from typing import Optional, Sequence

from s1x.config import BudgetMode
from s1x.evaluate.budget import Phase, Probe, Rule, SampleState
from s1x.evaluate.modes.mode import Mode, Prefixed


@dataclass
class EarlyExitBudget(Prefixed):
    probe_every: Optional[int] = None  # thinking tokens between answer probes
    probe_tokens: int = 16  # the longest answer a probe reads
    agree: int = 2  # thinking ends once this many probes in a row give the same answer


class ExitWhenSettled(Rule):
    def request_tokens(self, state: SampleState, remaining: int) -> int:
        every = state.policy.probe_every
        return min(remaining, every - state.thinking_tokens % every)  # up to the next probe

    def at_pause(self, state: SampleState, body: list[int]) -> None:
        if state.thinking_left() > 0:
            state.phase = Phase.probing  # thinking only pauses here when a probe is due
        else:
            super().at_pause(state, body)

    def read_probe(self, state: SampleState, new_ids: Sequence[int]) -> None:
        """Keep the probe (its tokens never join the sample's); end thinking once the last k agree."""
        p = state.policy
        finished = bool(new_ids) and new_ids[-1] in p.end_ids
        state.probes.append(Probe(state.thinking_tokens, list(new_ids), tuple(new_ids[:-1]) if finished else None))
        recent = {probe.answer for probe in state.probes[-p.agree:]}
        if len(state.probes) >= p.agree and len(recent) == 1 and None not in recent:
            state.exited = True
            state.open_answer(p.cap_ids)
        else:
            state.phase = Phase.thinking

    def extras(self, state: SampleState, decode) -> dict:
        return {"exited": state.exited, "probes": [{"at": probe.at, "answer": decode(probe.ids),
                                                    "finished": probe.answer is not None} for probe in state.probes]}


MODE = Mode(BudgetMode.early_exit, EarlyExitBudget,
            amounts=("probe_every", "agree"), positive=("probe_every", "probe_tokens", "agree"), in_rounds=True,
            policy=lambda tokenizer, budget: dict(probe_every=budget.probe_every, probe_tokens=budget.probe_tokens,
                                                  agree=budget.agree),
            rule=ExitWhenSettled())
