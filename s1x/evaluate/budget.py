"""Budget forcing as one engine-agnostic state machine.

Each sample alternates between asking an engine for tokens (a :class:`Request`) and advancing
on what came back. Thinking is generated with the end-of-thinking delimiter as a stop token.
Thinking tokens count only the model's own tokens, never forced ones. Every model token
(dropped delimiters included) counts against the generation limit, so forcing always ends.

What each mode does at a stop, a pause (a cap, the limit, a probe, a transition) and between rounds is its
`Rule`, in its module under s1x/evaluate/modes/; the state machine asks it. Engines drive it in one of two ways,
with the same decisions (`SampleState.advance`; modes that decide between rounds always run in rounds, their
`Mode.in_rounds`):
- rounds (`run_forcing`): a request ends at each stop and the next one carries the extension;
- in one generation: the engine puts the extension where the model's stop would have been and goes
  on, which saves a request, its scheduling and its re-prefill per extension, and reads the
  generation back into the same rounds (`ThinkingStream`, engines/stream.py; the vLLM engine's eval.forcing=stream).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Optional, Protocol, Sequence

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
    thinking_limit: int  # generation limit on thinking, whatever the budget
    answer_limit: int
    think_end_id: int
    end_ids: tuple[int, ...]  # tokens that end the turn (end_of_turn, eos)
    extension_ids: tuple[int, ...]  # appended when a delimiter is suppressed ("Wait")
    answer_open_ids: tuple[int, ...]  # forced after a natural end of thinking
    cap_ids: tuple[int, ...]  # forced when a cap or the limit ends thinking ("\n<answer>Final Answer:")
    tokens: Optional[int] = None  # N of max and min
    times: Optional[int] = None  # k of ignore; entropy: the most extensions
    suppress_ids: tuple[int, ...] = ()  # never generated while thinking (no_wait)
    threshold: float = 0.0  # entropy: nats above which a stop is extended
    probe_every: int = 0  # early_exit: thinking tokens between probes
    probe_tokens: int = 0  # early_exit: a probe's longest answer
    agree: int = 0  # early_exit: probes in a row that must give the same answer
    alpha_tokens: int = 0  # schedule: the alpha moment, in thinking tokens
    probability: float = 0.0  # schedule: an extension's chance at a transition at first
    transition_ids: tuple[int, ...] = ()  # schedule: tokens that are transition points
    rule: "Rule" = field(default_factory=lambda: Rule())  # the mode's (s1x/evaluate/modes/); the base: none's


class Phase(Enum):
    thinking = "thinking"
    measuring = "measuring"  # the mode reads something off the model to decide (entropy: where it stopped)
    probing = "probing"  # early_exit: a probe's answer is asked for
    answer = "answer"
    done = "done"


@dataclass(frozen=True)
class Probe:
    """early_exit: the answer read after `at` thinking tokens; None where the probe's token limit cut it."""
    at: int
    ids: list[int]
    answer: Optional[tuple[int, ...]]


class Rule:
    """What a budget mode does where thinking pauses. This base is budget=none's: thinking goes on until the
    model ends it or the generation limit does. A mode's module (s1x/evaluate/modes/) overrides what differs."""

    def thinking_left(self, state: "SampleState") -> int:
        """Model tokens thinking may still take before the budget or the generation limit ends it."""
        return state.policy.thinking_limit - state.spent

    def request_tokens(self, state: "SampleState", remaining: int) -> int:
        """The next thinking request's token limit (early_exit: up to the next probe)."""
        return remaining

    def stops_extended_below(self, state: "SampleState", room: int) -> int:
        """A stop after fewer new thinking tokens than this is dropped and the extension appended (`room`: model
        tokens the limit leaves, less the stop's)."""
        return 0

    def at_stop(self, state: "SampleState") -> None:
        """The model ended thinking, and the stop stands."""
        state.hit_limit = self.must_continue(state)  # the budget says go on, the limit says no more
        state.open_answer(state.policy.answer_open_ids)

    def must_continue(self, state: "SampleState") -> bool:
        return False

    def at_pause(self, state: "SampleState", body: list[int]) -> None:
        """A request ended without a stop: where the budget or the limit ends thinking (early_exit: a probe is
        due; schedule: a transition)."""
        state.force_answer()

    def measure(self, states: list["SampleState"], engine: "Measurer") -> None:
        """Samples this mode left waiting (Phase.measuring) read what they wait for off the model, all together,
        and decide on it (entropy: the entropy where each stopped)."""
        raise ValueError(f"budget={states[0].policy.mode.value} measures nothing between rounds")

    def reached_budget(self, state: "SampleState") -> bool:
        """Whether thinking ends at the budget (a cap) rather than at the generation limit."""
        return False

    def extras(self, state: "SampleState", decode: Callable[[list[int]], str]) -> dict:
        """What a record carries of this mode's own (its `extras`)."""
        return {}


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
    notes: dict = field(default_factory=dict)  # a mode's own values for this sample (deepconf: its threshold)

    def __post_init__(self) -> None:
        self.draws = random.Random(self.seed)

    def request(self) -> Optional[Request]:
        p = self.policy
        if self.phase is Phase.thinking:
            remaining = self.thinking_left()
            if remaining <= 0:
                self.force_answer()
                return self.request()
            stops = (p.think_end_id, *p.end_ids, *p.transition_ids)  # transitions: schedule's only
            return Request(self.prompt_ids + self.generated, p.rule.request_tokens(self, remaining), stops, p.suppress_ids)
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
            p.rule.read_probe(self, new_ids)
            return
        stopped = bool(new_ids) and new_ids[-1] in (p.think_end_id, *p.end_ids)
        body = list(new_ids[:-1] if stopped else new_ids)
        extended = stopped and len(body) < self.stops_extended_below()
        self.generated += body
        self.thinking_tokens += len(body)
        self.spent += len(new_ids)
        if extended:
            self.extend()
        elif stopped:
            p.rule.at_stop(self)
        else:
            p.rule.at_pause(self, body)

    def thinking_left(self) -> int:
        """Model tokens thinking may still take before the budget or the generation limit ends it."""
        return self.policy.rule.thinking_left(self)

    def stops_extended_below(self) -> int:
        """A stop after fewer than this many new thinking tokens is dropped and the extension appended:
        the budget asks for more thinking there, and the stop plus one more token fit the limit."""
        return self.policy.rule.stops_extended_below(self, self.policy.thinking_limit - self.spent - 1)

    def extend(self) -> None:
        self.extension_offsets.append(len(self.generated))
        self.generated += self.policy.extension_ids
        self.extensions += 1

    def force_answer(self) -> None:
        """Thinking ends at the budget (capped) or the generation limit, with the answer cue."""
        if self.policy.rule.reached_budget(self):
            self.capped = True
        else:
            self.hit_limit = True
        self.open_answer(self.policy.cap_ids)

    def open_answer(self, forced: tuple[int, ...]) -> None:
        self.thinking_end = len(self.generated)
        self.generated += forced
        self.answer_begin = len(self.generated)
        self.phase = Phase.answer


Generate = Callable[[list[Request]], list[list[int]]]


class Measurer(Protocol):
    """What modes that decide between rounds read off the model (engines provide it, s1x/evaluate/engines/)."""

    def entropy(self, contexts: list[list[int]]) -> list[float]:
        """The entropy (nats) of the next-token distribution after each context."""
        ...

    def confidences(self, contexts: list[list[int]], starts: list[int], top_k: int) -> list[list[float]]:
        """Each context's token confidences from position `start` on: minus the mean log-probability of the
        top_k candidates of the distribution each token was drawn from."""
        ...


def run_forcing(generate: Generate, states: list[SampleState], on_round: Callable[[int], None] = lambda n: None,
                measurer: Optional[Measurer] = None) -> None:
    """Advance all samples together, one engine call per round, until every one is done; samples that wait on
    a measurement (Phase.measuring) get it from `measurer`, through their mode's rule, before the round."""
    while True:
        waiting = [state for state in states if state.phase is Phase.measuring]
        if waiting:
            if measurer is None:
                raise ValueError(f"budget={waiting[0].policy.mode.value} needs an engine that measures the model")
            for rule in {id(state.policy.rule): state.policy.rule for state in waiting}.values():
                rule.measure([state for state in waiting if state.policy.rule is rule], measurer)
        active = [(state, state.request()) for state in states if state.phase is not Phase.done]
        if not active:
            return
        outputs = generate([request for _, request in active])
        for (state, _), new_ids in zip(active, outputs):
            state.advance(new_ids)
        on_round(sum(state.phase is Phase.done for state in states))
