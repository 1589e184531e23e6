"""A sample's thinking as one generation that an engine forces into, and its reading back into rounds.

Engine-agnostic (no vLLM here): the vLLM engine's logits processor keeps a copy of each generation's stream in
vLLM's worker and writes what it prescribes; the engine reads the finished generation back through the same
stream into the sample's `budget.SampleState`, which advances exactly as `budget.run_forcing`'s rounds would.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Collection, Optional, Sequence

from s1x.evaluate.budget import Phase, Request, SampleState


@dataclass
class ThinkingStream:
    """A sample's thinking as one generation that the engine forces into, read back into the state's rounds.

    The generation is requested with the thinking budget left as its token limit, so it ends where the
    budget does, like a round. In place of the model's choice it carries:
    - the rest of an extension while one is being forced (`forced_next`);
    - inside the window where the state drops stops (`stands_in`): the extension's first token for a stop,
      and the delimiter for the model's own first extension token (a pause: the generation ends there and
      the next request continues the stream), so that an extension token there is always a forced one.
    So `read` needs only the tokens to advance the state exactly as rounds ending at the same stops would.
    When the engine can tell where it stood in (`marked`: greedy decoding, where a stand-in is never the
    model's most likely token, which the engine reads in-band from vLLM's raw logprobs), the model's own
    extension token is written as it is, so no pause costs a request. Forced tokens count against the token limit but not the budget: after a longer
    extension the generation ends short of the budget's end, and the next request goes on. An empty
    extension cannot stand in for a stop: then the stop ends the generation, as it ends a round."""

    state: SampleState
    body: list[int] = field(default_factory=list)  # the model's tokens since the state last advanced
    forcing: list[int] = field(default_factory=list)  # the rest of an extension being forced
    marked: bool = False  # stand-ins are told by position (`read`'s stand_ins), not encoded in the tokens
    stops: tuple[int, ...] = field(init=False)
    window: int = field(init=False)  # stops are replaced while len(body) is below this

    def __post_init__(self) -> None:
        p = self.state.policy
        self.stops = (p.think_end_id, *p.end_ids)
        self._bounds()

    def request(self) -> Optional[Request]:
        """The state's next request; while thinking, it continues the body after a pause."""
        request = self.state.request()
        if request is None or self.state.phase is not Phase.thinking:
            return request
        return Request(request.prompt_ids + self.body, request.max_new_tokens - len(self.body), request.stop_ids,
                       request.suppress_ids)

    def forced_next(self) -> Optional[int]:
        """The token forced next whatever the model prefers, if any."""
        return self.forcing[0] if self.forcing else None

    def stands_in(self) -> bool:
        """Whether the next token is written as its stand-in: the extension's first token for a stop, and
        (unless `marked`) the delimiter for the extension's first token."""
        return len(self.body) < self.window

    def stand_in(self, choice: int) -> int:
        """The token written inside the window where the model chooses `choice`."""
        p = self.state.policy
        if choice in self.stops:
            return p.extension_ids[0]
        return p.think_end_id if choice == p.extension_ids[0] and not self.marked else choice

    def take(self, token: int, stood_in: bool = False) -> None:
        """Read the generation's next token; `stood_in`: the engine wrote it in place of the model's choice
        (only when `marked`; consulted only where a stand-in can be: the extension's first token inside the window)."""
        if self.forcing:
            self.forcing.pop(0)
            return
        extension = self.state.policy.extension_ids
        in_window = len(self.body) < self.window
        if token in self.stops:
            if in_window and not self.marked:  # a pause: the model chose the extension's first token
                self.body.append(extension[0])
            else:
                self._advance(self.body + [token])
        elif in_window and token == extension[0] and (stood_in or not self.marked):  # an extension for a stop
            self._advance(self.body + [self.state.policy.think_end_id])
            self.forcing = list(extension[1:])
        else:
            self.body.append(token)

    def read(self, generation: Sequence[int], stand_ins: Collection[int] = ()) -> None:
        """Read a whole generation (`stand_ins`: the positions where the engine stood in, when `marked`), then
        its end, if its token limit ended it."""
        for position, token in enumerate(generation):
            self.take(token, position in stand_ins)
        if generation and generation[-1] in self.stops:
            return
        self.forcing = []  # the rest of a cut extension is among the state's tokens already
        if len(self.body) == self.state.thinking_left():  # the budget's end: a round cut by its token limit
            self._advance(self.body)

    def _advance(self, round_ids: list[int]) -> None:
        self.state.advance(round_ids)
        self.body = []
        self._bounds()

    def _bounds(self) -> None:
        self.window = self.state.stops_extended_below() if self.state.policy.extension_ids else 0
