"""vLLM's side of in-stream forcing: a batch-level logits processor (vLLM's V1 interface) that keeps each
forced generation's `ThinkingStream` in vLLM's worker and writes into it what the stream prescribes, and
masks the tokens its policy suppresses while thinking (budget=no_wait).

Forced tokens and greedy stand-ins are written by leaving only that token's logit finite. The engine finds the
greedy stand-ins in-band: vLLM's raw logprobs are taken before this processor runs, so a written token is never
the position's most likely one (engines/vllm_adapter.py). Sampled stand-ins are encoded in the tokens.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Optional

import torch
from vllm import SamplingParams
from vllm.sampling_params import SamplingType

from s1x.evaluate.engines.stream import ThinkingStream
from s1x.evaluate.engines.vllm_adapter import BatchUpdate, LogitsProcessor, MoveDirectionality

STREAM = "s1x_stream"  # SamplingParams.extra_args key: the pickled (request id, ThinkingStream)


@dataclass
class _Generation:
    """A forced generation in the worker: its stream, vLLM's list of its output ids (kept current by vLLM),
    and what its next token is: `forced`, a stand-in (`standing_in`), or the model's. That changes only
    after a forced token, at the window's end or after an extension's first token (any other stop ends the
    generation), so until then the stream does not read the ids: per-token Python here slows every step."""

    request_id: str
    stream: ThinkingStream
    output_ids: list[int]
    max_tokens: int
    temperature: float  # 0: greedy
    stand_ins: set[int] = field(default_factory=set)  # positions in output_ids where a stand-in was written
    read: int = 0  # output ids the stream has taken
    seen: int = 0  # output ids looked at
    settled_until: int = 0  # len(output_ids) at which what the next token is may change
    forced: Optional[int] = None
    standing_in: bool = False

    def __post_init__(self) -> None:
        extension = self.stream.state.policy.extension_ids
        self.extension_start = extension[0] if extension else None
        self.suppressed = list(self.stream.state.policy.suppress_ids)
        # Generations whose stand-ins are written together: the same stops, extension and temperature.
        self.stand_in_group = self.stream.stops, self.extension_start, self.temperature

    def update(self) -> None:
        ids = self.output_ids
        one_new = len(ids) == self.seen + 1
        if one_new and len(ids) < self.settled_until and not (self.standing_in and ids[-1] == self.extension_start):
            self.seen = len(ids)
            return
        stream = self.stream
        for position in range(self.read, len(ids)):
            stream.take(ids[position], position in self.stand_ins)
        self.read = self.seen = len(ids)
        self.forced = stream.forced_next()
        self.standing_in = self.forced is None and stream.stands_in()
        if self.forced is not None:
            self.settled_until = self.read + 1
        elif self.standing_in:
            self.settled_until = self.read + stream.window - len(stream.body)
        else:
            self.settled_until = self.max_tokens

    def ended(self) -> bool:
        """A stop or its token limit ended it, rather than the scheduler pausing it."""
        ids = self.output_ids
        return len(ids) >= self.max_tokens or bool(ids) and ids[-1] in self.stream.stops


class ForcingLogitsProcessor(LogitsProcessor):
    """Writes into each forced generation what its ThinkingStream prescribes: forced tokens, and inside the
    window the stand-in of the model's choice. Greedy: the stand-in of the argmax. Sampling: logits are moved
    so that vLLM's own (seeded) sampling draws each stand-in with the probability of what it stands for,
    and the model's other tokens as before: the distribution of a round that drops the stop and goes on."""

    def __init__(self, vllm_config, device: torch.device, is_pin_memory: bool) -> None:
        # By request id: the scheduler takes a generation out of the batch when it skips a step, then puts it back.
        self.generations: dict[str, _Generation] = {}
        self.rows: dict[int, _Generation] = {}  # by batch index = logits row

    def is_argmax_invariant(self) -> bool:
        return False

    def update_state(self, batch_update: Optional[BatchUpdate]) -> None:
        if batch_update is None:
            return
        for index in batch_update.removed:
            generation = self.rows.pop(index, None)
            if generation is not None and generation.ended():
                del self.generations[generation.request_id]
        for index, params, _, output_ids in batch_update.added:
            if params.extra_args and STREAM in params.extra_args:
                self.rows[index] = self._generation(params, output_ids)
            else:
                self.rows.pop(index, None)
        for a, b, direction in batch_update.moved:
            at_a, at_b = self.rows.pop(a, None), self.rows.pop(b, None)
            if at_a is not None:
                self.rows[b] = at_a
            if at_b is not None and direction is MoveDirectionality.SWAP:
                self.rows[a] = at_b

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        greedy: list[tuple[int, _Generation]] = []
        sampled: dict[tuple, list[int]] = {}  # rows by stand-in group
        for index, generation in self.rows.items():
            # Output ids are read here, not in update_state: with async scheduling they are filled in just before.
            generation.update()
            if generation.forced is not None:
                _force(logits, index, generation.forced)
                continue
            if generation.suppressed:  # no_wait: these never come while thinking
                logits[index, generation.suppressed] = float("-inf")
            if generation.standing_in and generation.temperature == 0:
                greedy.append((index, generation))
            elif generation.standing_in:
                sampled.setdefault(generation.stand_in_group, []).append(index)
        if greedy:
            best = logits.max(dim=-1)  # = argmax, three times faster on CPUs
            choices = best.indices.tolist()
            for index, generation in greedy:
                if (token := generation.stream.stand_in(choices[index])) != choices[index]:
                    if generation.stream.marked and logits[index, token] == best.values[index]:
                        # The stand-in ties with the stop: its raw logprob would not show it as one. Write
                        # nothing: the sampler's argmax takes the stop (a round's end) or the token (the model's).
                        continue
                    _force(logits, index, token)
                    if generation.stream.marked:  # the engine reads it from the raw logprobs
                        generation.stand_ins.add(len(generation.output_ids))
        for (stops, first, temperature), rows in sampled.items():
            _write_stand_ins(logits, torch.tensor(rows), list(stops), first, temperature)
        return logits

    def _generation(self, params: SamplingParams, output_ids: list[int]) -> _Generation:
        request_id, stream = pickle.loads(params.extra_args[STREAM])
        generation = self.generations.get(request_id)
        if generation is None:
            temperature = 0.0 if params.sampling_type is SamplingType.GREEDY else params.temperature
            generation = _Generation(request_id, stream, output_ids, params.max_tokens, temperature)
            self.generations[request_id] = generation
        generation.output_ids = output_ids
        return generation


def _force(logits: torch.Tensor, index: int, token: int) -> None:
    logits[index] = float("-inf")
    logits[index, token] = 0.0


def _write_stand_ins(logits: torch.Tensor, rows: torch.Tensor, stops: list[int], first: int, temperature: float) -> None:
    """Sampling: the extension's first token takes the logit of the stops' summed probability at the
    temperature (the sampler divides by it next), the delimiter (stops[0]) the extension's first token's."""
    stop_logits = logits[rows[:, None], stops]
    combined = temperature * torch.logsumexp(stop_logits / temperature, dim=-1)
    first_logits = logits[rows, first]
    logits[rows[:, None], stops] = float("-inf")
    logits[rows, first] = combined
    logits[rows, stops[0]] = first_logits
