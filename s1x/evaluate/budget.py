"""Budget forcing as one engine-agnostic state machine.

Each sample alternates between asking an engine for tokens (a :class:`Request`) and advancing
on what came back. Thinking is generated with the end-of-thinking delimiter as a stop token:
- max N: thinking is requested at most N tokens at a time, counted across every round; when it
  reaches N the delimiter and the answer cue are forced ("cap").
- min N: a delimiter before N thinking tokens is dropped and the extension string appended.
- ignore k: the first k delimiters are dropped, each followed by the extension string.
- no_wait: thinking as the model ends it, but the engine never generates the policy's suppressed tokens
  (reflection words) while thinking.
Thinking tokens count only the model's own tokens, never forced ones. Every model token
(dropped delimiters included) counts against the generation limit, so forcing always ends.

Engines drive it in one of two ways, with the same decisions (`SampleState.advance`):
- rounds (`run_forcing`): a request ends at each stop and the next one carries the extension;
- in one generation: the engine puts the extension where the model's stop would have been and goes
  on, which saves a request, its scheduling and its re-prefill per extension, and reads the
  generation back into the same rounds (`ThinkingStream`, engines/stream.py; the vLLM engine's eval.forcing=stream).
"""
from __future__ import annotations

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
    times: Optional[int]  # k of ignore
    thinking_limit: int  # generation limit on thinking, whatever the budget
    answer_limit: int
    think_end_id: int
    end_ids: tuple[int, ...]  # tokens that end the turn (end_of_turn, eos)
    extension_ids: tuple[int, ...]  # appended when a delimiter is suppressed ("Wait")
    answer_open_ids: tuple[int, ...]  # forced after a natural end of thinking
    cap_ids: tuple[int, ...]  # forced when a cap or the limit ends thinking ("\n<answer>Final Answer:")
    suppress_ids: tuple[int, ...] = ()  # never generated while thinking (no_wait)


class Phase(Enum):
    thinking = "thinking"
    answer = "answer"
    done = "done"


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

    def request(self) -> Optional[Request]:
        p = self.policy
        if self.phase is Phase.thinking:
            remaining = self.thinking_left()
            if remaining <= 0:
                self._force_answer()
                return self.request()
            return Request(self.prompt_ids + self.generated, remaining, (p.think_end_id, *p.end_ids), p.suppress_ids)
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
        stopped = bool(new_ids) and new_ids[-1] in (p.think_end_id, *p.end_ids)
        body = list(new_ids[:-1] if stopped else new_ids)
        extended = stopped and len(body) < self.stops_extended_below()
        self.generated += body
        self.thinking_tokens += len(body)
        self.spent += len(new_ids)
        if not stopped:
            self._force_answer()
        elif extended:
            self.extension_offsets.append(len(self.generated))
            self.generated += p.extension_ids
            self.extensions += 1
        else:
            self.hit_limit = self._must_continue()  # the budget says go on, the limit says no more
            self._open_answer(p.answer_open_ids)

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


def run_forcing(generate: Generate, states: list[SampleState], on_round: Callable[[int], None] = lambda n: None) -> None:
    """Advance all samples together, one engine call per round, until every one is done."""
    while True:
        active = [(state, state.request()) for state in states if state.phase is not Phase.done]
        if not active:
            return
        outputs = generate([request for _, request in active])
        for (state, _), new_ids in zip(active, outputs):
            state.advance(new_ids)
        on_round(sum(state.phase is Phase.done for state in states))
