"""Budget forcing as one engine-agnostic state machine.

Each sample alternates between asking an engine for tokens (a :class:`Request`) and advancing
on what came back. Thinking is generated with the end-of-thinking delimiter as a stop token:
- max N: thinking is requested at most N tokens at a time, counted across every round; when it
  reaches N the delimiter and the answer cue are forced ("cap").
- min N: a delimiter before N thinking tokens is dropped and the extension string appended.
- ignore k: the first k delimiters are dropped, each followed by the extension string.
- no_wait: thinking as the model ends it, but the engine never generates the policy's suppressed tokens
  (reflection words) while thinking.
- entropy: a stop is extended (up to k times) where the entropy of the model's next-token distribution there
  is above a threshold: the engine measures it between rounds (`Measure`), each decision's value is kept.
- early_exit: every N thinking tokens a probe forces the answer cue on the shared prefix and reads a short
  answer (a request that leaves the sample's tokens as they are); thinking ends once the last k agree.
- schedule: thinking stops at transition tokens too; at each one before the alpha moment the extension is
  appended with a chance falling linearly to 0 there, drawn from the sample's own seed; the first one after
  it ends thinking with the answer cue (AlphaOne turns slow thinking into fast there).
Thinking tokens count only the model's own tokens, never forced ones. Every model token
(dropped delimiters included) counts against the generation limit, so forcing always ends.

Engines drive it in one of two ways, with the same decisions (`SampleState.advance`; entropy, early_exit and
schedule decide between rounds, so they always run in rounds, `IN_ROUNDS`):
- rounds (`run_forcing`): a request ends at each stop and the next one carries the extension;
- in one generation: the engine puts the extension where the model's stop would have been and goes
  on, which saves a request, its scheduling and its re-prefill per extension, and reads the
  generation back into the same rounds (`ThinkingStream`, engines/stream.py; the vLLM engine's eval.forcing=stream).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Optional, Sequence

from s1x.config import BudgetMode


@dataclass(frozen=True)
class Request:
    prompt_ids: list[int]
    max_new_tokens: int
    stop_ids: tuple[int, ...]
    suppress_ids: tuple[int, ...] = ()  # tokens the engine must never generate for this request


@dataclass(frozen=True)
class ForcingPolicy:
    mode: BudgetMode
    tokens: Optional[int]
    times: Optional[int]  # k of ignore; entropy: the most extensions
    thinking_limit: int  # generation limit on thinking, whatever the budget
    answer_limit: int
    think_end_id: int
    end_ids: tuple[int, ...]  # tokens that end the turn (end_of_turn, eos)
    extension_ids: tuple[int, ...]  # appended when a delimiter is suppressed ("Wait")
    answer_open_ids: tuple[int, ...]  # forced after a natural end of thinking
    cap_ids: tuple[int, ...]  # forced when a cap or the limit ends thinking ("\n<answer>Final Answer:")
    suppress_ids: tuple[int, ...] = ()  # never generated while thinking (no_wait)
    threshold: float = 0.0  # entropy: nats above which a stop is extended
    probe_every: int = 0  # early_exit: thinking tokens between probes
    probe_tokens: int = 0  # early_exit: a probe's longest answer
    agree: int = 0  # early_exit: probes in a row that must give the same answer
    alpha_tokens: int = 0  # schedule: the alpha moment, in thinking tokens
    probability: float = 0.0  # schedule: an extension's chance at a transition at first
    transition_ids: tuple[int, ...] = ()  # schedule: tokens that are transition points


IN_ROUNDS = {BudgetMode.entropy, BudgetMode.early_exit, BudgetMode.schedule}  # decided between rounds


class Phase(Enum):
    thinking = "thinking"
    measuring = "measuring"  # entropy: the model stopped; the entropy where it did decides
    probing = "probing"  # early_exit: a probe's answer is asked for
    answer = "answer"
    done = "done"


@dataclass(frozen=True)
class Probe:
    """early_exit: the answer read after `at` thinking tokens; None where the probe's token limit cut it."""
    at: int
    ids: list[int]
    answer: Optional[tuple[int, ...]]


@dataclass
class SampleState:
    prompt_ids: list[int]
    policy: ForcingPolicy
    generated: list[int] = field(default_factory=list)  # model and forced tokens after the prompt
    phase: Phase = Phase.thinking
    thinking_tokens: int = 0  # the model's own thinking tokens
    spent: int = 0  # every token the model generated while thinking
    extensions: int = 0
    extension_offsets: list[int] = field(default_factory=list)  # where each forced extension starts
    capped: bool = False
    hit_limit: bool = False
    rounds: int = 0
    thinking_end: int = 0  # len(generated) when thinking ended
    answer_begin: int = 0  # len(generated) when the model started its answer
    seed: int = 0  # schedule's draws
    entropies: list[float] = field(default_factory=list)  # entropy: the value at each stop decided on
    probes: list[Probe] = field(default_factory=list)  # early_exit
    exited: bool = False  # early_exit: the probes agreed and ended thinking

    def __post_init__(self) -> None:
        self._draws = random.Random(self.seed)

    def request(self) -> Optional[Request]:
        p = self.policy
        if self.phase is Phase.thinking:
            remaining = self.thinking_left()
            if remaining <= 0:
                self._force_answer()
                return self.request()
            if p.mode is BudgetMode.early_exit:  # up to the next probe
                remaining = min(remaining, p.probe_every - self.thinking_tokens % p.probe_every)
            stops = (p.think_end_id, *p.end_ids, *p.transition_ids)  # transitions: schedule's only
            return Request(self.prompt_ids + self.generated, remaining, stops, p.suppress_ids)
        if self.phase is Phase.probing:
            return Request(self.prompt_ids + self.generated + list(p.cap_ids), p.probe_tokens, p.end_ids)
        if self.phase is Phase.answer:
            return Request(self.prompt_ids + self.generated, p.answer_limit, p.end_ids)
        return None

    def advance(self, new_ids: Sequence[int]) -> None:
        self.rounds += 1
        p = self.policy
        if self.phase is Phase.answer:
            ended = bool(new_ids) and new_ids[-1] in p.end_ids
            self.generated += list(new_ids[:-1] if ended else new_ids)
            self.phase = Phase.done
            return
        if self.phase is Phase.probing:
            self._read_probe(new_ids)
            return
        stopped = bool(new_ids) and new_ids[-1] in (p.think_end_id, *p.end_ids)
        body = list(new_ids[:-1] if stopped else new_ids)
        extended = stopped and len(body) < self.stops_extended_below()
        transition = not stopped and bool(body) and body[-1] in p.transition_ids
        self.generated += body
        self.thinking_tokens += len(body)
        self.spent += len(new_ids)
        if transition and self.thinking_tokens >= p.alpha_tokens:  # schedule: after the alpha moment, the end
            self.capped = True
            self._open_answer(p.cap_ids)
        elif transition:  # schedule: thinking goes on, with the extension if the draw says so
            chance = p.probability * (1 - self.thinking_tokens / p.alpha_tokens)
            if self._draws.random() < chance and self.thinking_left() > 0:
                self._extend()
        elif not stopped and p.mode is BudgetMode.early_exit and self.thinking_left() > 0:
            self.phase = Phase.probing  # at the next probe: thinking only stops here when a probe is due
        elif not stopped:
            self._force_answer()
        elif extended:
            self._extend()
        elif p.mode is BudgetMode.entropy and self.extensions < p.times and self.thinking_left() > 0:
            self.phase = Phase.measuring
        else:
            self.hit_limit = self._must_continue()  # the budget says go on, the limit says no more
            self._open_answer(p.answer_open_ids)

    def decide(self, entropy: float) -> None:
        """budget=entropy: the model stopped where the next-token distribution has this entropy; above the
        threshold the stop is dropped and the extension appended, else thinking ends there."""
        self.entropies.append(entropy)
        if entropy > self.policy.threshold:
            self.phase = Phase.thinking
            self._extend()
        else:
            self._open_answer(self.policy.answer_open_ids)

    def thinking_left(self) -> int:
        """Model tokens thinking may still take before the cap or the generation limit ends it."""
        p = self.policy
        left = p.thinking_limit - self.spent
        return min(left, p.tokens - self.thinking_tokens) if p.mode is BudgetMode.max else left

    def stops_extended_below(self) -> int:
        """A stop after fewer than this many new thinking tokens is dropped and the extension appended:
        the budget asks for more thinking there, and the stop plus one more token fit the limit."""
        p = self.policy
        room = p.thinking_limit - self.spent - 1
        if p.mode is BudgetMode.min:
            return max(0, min(p.tokens - self.thinking_tokens, room))
        return max(0, room) if p.mode is BudgetMode.ignore and self.extensions < p.times else 0

    def _must_continue(self) -> bool:
        p = self.policy
        if p.mode is BudgetMode.min:
            return self.thinking_tokens < p.tokens
        return p.mode is BudgetMode.ignore and self.extensions < p.times

    def _extend(self) -> None:
        self.extension_offsets.append(len(self.generated))
        self.generated += self.policy.extension_ids
        self.extensions += 1

    def _read_probe(self, new_ids: Sequence[int]) -> None:
        """early_exit: keep the probe (its tokens never join the sample's); end thinking once the last k agree."""
        p = self.policy
        finished = bool(new_ids) and new_ids[-1] in p.end_ids
        self.probes.append(Probe(self.thinking_tokens, list(new_ids), tuple(new_ids[:-1]) if finished else None))
        recent = {probe.answer for probe in self.probes[-p.agree:]}
        if len(self.probes) >= p.agree and len(recent) == 1 and None not in recent:
            self.exited = True
            self._open_answer(p.cap_ids)
        else:
            self.phase = Phase.thinking

    def _force_answer(self) -> None:
        p = self.policy
        if p.mode is BudgetMode.max and self.thinking_tokens >= p.tokens:
            self.capped = True
        else:
            self.hit_limit = True
        self._open_answer(p.cap_ids)

    def _open_answer(self, forced: tuple[int, ...]) -> None:
        self.thinking_end = len(self.generated)
        self.generated += forced
        self.answer_begin = len(self.generated)
        self.phase = Phase.answer


Generate = Callable[[list[Request]], list[list[int]]]
Measure = Callable[[list[list[int]]], list[float]]  # contexts -> the entropy (nats) of the next-token distribution


def run_forcing(generate: Generate, states: list[SampleState], on_round: Callable[[int], None] = lambda n: None,
                measure: Optional[Measure] = None) -> None:
    """Advance all samples together, one engine call per round, until every one is done; samples whose stop
    waits for its entropy (budget=entropy) get it from `measure`, all together, before the round."""
    while True:
        waiting = [state for state in states if state.phase is Phase.measuring]
        if waiting:
            if measure is None:
                raise ValueError("budget=entropy needs an engine that measures next-token entropy")
            for state, entropy in zip(waiting, measure([s.prompt_ids + s.generated for s in waiting])):
                state.decide(entropy)
        active = [(state, state.request()) for state in states if state.phase is not Phase.done]
        if not active:
            return
        outputs = generate([request for _, request in active])
        for (state, _), new_ids in zip(active, outputs):
            state.advance(new_ids)
        on_round(sum(state.phase is Phase.done for state in states))
