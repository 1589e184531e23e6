"""Budget forcing: the state machine against a scripted generator, then against the real HF engine."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from s1x.evaluate.budget import ForcingPolicy, Phase, Request, SampleState, run_forcing
from s1x.evaluate.engines.stream import ThinkingStream
from s1x.chat import S1Format
from s1x.config import BudgetConfig, BudgetMode, ConfigError, EvalConfig, ExtendConfig, ModelConfig
from s1x.evaluate.modes import budget_config
from s1x.evaluate.engines.hf import HFEngine
from s1x.evaluate.policy import forcing_policy
from s1x.evaluate.modes import MODES, check_budget
from s1x.models import load_model, load_tokenizer
from tests.conftest import EAGER_QUESTIONS

THINK_END, END, EXT, OPEN, CAP = 1, 2, 90, 91, 92


def scripted_policy(mode: BudgetMode, tokens: int | None, limit: int = 200, times: int | None = None) -> ForcingPolicy:
    return ForcingPolicy(mode=mode, tokens=tokens, times=times, thinking_limit=limit, answer_limit=5, think_end_id=THINK_END,
                         end_ids=(END,), extension_ids=(EXT,), answer_open_ids=(OPEN,), cap_ids=(CAP, CAP),
                         rule=MODES[mode].rule)


class ScriptedModel:
    """Emits thinking tokens (10..19) and tries to stop after a random run length; answers with 3 tokens."""

    def __init__(self, seed: int, max_run: int) -> None:
        self.rng = random.Random(seed)
        self.max_run = max_run
        self.requests: list[Request] = []

    def __call__(self, requests: list[Request]) -> list[list[int]]:
        self.requests += requests
        outputs = []
        for r in requests:
            if THINK_END not in r.stop_ids:  # answer phase
                outputs.append([50, 51, END][: r.max_new_tokens])
                continue
            run = [10 + self.rng.randrange(10) for _ in range(self.rng.randrange(self.max_run + 1))]
            stop = self.rng.choice([THINK_END, END])
            outputs.append((run + [stop])[: r.max_new_tokens])
        return outputs


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("cap", [1, 7, 40])
def test_max_never_exceeds_the_cap_across_rounds(seed: int, cap: int):
    model = ScriptedModel(seed, max_run=30)
    states = [SampleState([0], scripted_policy(BudgetMode.max, cap)) for _ in range(8)]
    run_forcing(model, states)
    for s in states:
        thinking = s.generated[: s.thinking_end]
        assert s.thinking_tokens == len(thinking) <= cap
        assert s.capped == (s.thinking_tokens == cap)
        assert s.generated[s.thinking_end: s.answer_begin] == ([CAP, CAP] if s.capped else [OPEN])
        assert s.phase is Phase.done and s.generated[s.answer_begin:] == [50, 51]
    assert all(r.max_new_tokens >= 1 for r in model.requests)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("minimum", [5, 25, 60])
def test_min_never_stops_early_and_extends_each_time(seed: int, minimum: int):
    limit = 100
    states = [SampleState([0], scripted_policy(BudgetMode.min, minimum, limit)) for _ in range(8)]
    run_forcing(ScriptedModel(seed, max_run=8), states)
    for s in states:
        assert s.thinking_tokens >= minimum or s.hit_limit
        assert s.spent <= limit
        thinking = s.generated[: s.thinking_end]
        assert thinking.count(EXT) == s.extensions == len(s.extension_offsets)
        assert all(thinking[offset] == EXT for offset in s.extension_offsets)
        assert s.thinking_tokens == len(thinking) - s.extensions  # forced tokens never count
        assert THINK_END not in thinking and END not in thinking


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("times", [1, 3])
def test_ignore_suppresses_exactly_k_delimiters(seed: int, times: int):
    states = [SampleState([0], scripted_policy(BudgetMode.ignore, None, limit=500, times=times)) for _ in range(8)]
    run_forcing(ScriptedModel(seed, max_run=10), states)
    for s in states:
        # the scripted model always tries to stop, so each sample is extended exactly k times, then ends.
        assert s.extensions == times == s.generated[: s.thinking_end].count(EXT)
        assert s.generated[s.thinking_end: s.answer_begin] == [OPEN] and not s.hit_limit


def test_min_with_an_always_stopping_model_ends_at_the_limit():
    # extend=none and a model that only ever emits the delimiter: the limit must still end thinking.
    policy = ForcingPolicy(mode=BudgetMode.min, tokens=10, times=None, thinking_limit=12, answer_limit=3, think_end_id=THINK_END,
                           end_ids=(END,), extension_ids=(), answer_open_ids=(OPEN,), cap_ids=(CAP,),
                           rule=MODES[BudgetMode.min].rule)
    state = SampleState([0], policy)
    run_forcing(lambda requests: [[THINK_END] if THINK_END in r.stop_ids else [END] for r in requests], [state])
    assert state.hit_limit and state.thinking_tokens == 0 and state.spent == 12 and state.extensions == 11


def test_none_mode_ends_at_the_first_delimiter():
    state = SampleState([0], scripted_policy(BudgetMode.none, None))
    run_forcing(lambda requests: [[10, 11, THINK_END] if THINK_END in r.stop_ids else [50, END] for r in requests], [state])
    assert state.generated == [10, 11, OPEN, 50] and state.extensions == 0 and not state.capped


# --- in-stream forcing (ThinkingStream) against rounds -------------------------------------------

class ContextModel:
    """A deterministic model of its whole context: thinking tokens (10..19), sometimes a stop, and sometimes
    the extension's first token (EXT) on its own, so that both engines' drivers see the same choices."""

    def __init__(self, seed: int, stop_chance: float, extension_chance: float) -> None:
        self.seed, self.stop_chance, self.extension_chance = seed, stop_chance, extension_chance

    def __call__(self, context: list[int]) -> int:
        rng = random.Random(hash((self.seed, len(context), tuple(context[-3:]))))
        draw = rng.random()
        if draw < self.stop_chance:
            return rng.choice([THINK_END, END])
        return EXT if draw < self.stop_chance + self.extension_chance else 10 + rng.randrange(10)

    def generate(self, request: Request, write=lambda choice: choice) -> list[int]:
        """Up to the request's limit, through its first stop; `write` turns each choice into the token written."""
        context, out = list(request.prompt_ids), []
        while len(out) < request.max_new_tokens and (not out or out[-1] not in request.stop_ids):
            out.append(write(self(context)))
            context.append(out[-1])
        return out


def in_stream(model: ContextModel, states: list[SampleState], marked: bool) -> int:
    """What VLLMEngine.force (eval.forcing=stream) and its logits processor do, without vLLM: forced tokens and
    stand-ins are written by a copy of each sample's stream, as in vLLM's worker; when `marked`, the reader is
    told where the written token is not the model's choice (what the raw logprobs show). Returns the number
    of requests."""
    requests = 0
    for state in states:
        stream = ThinkingStream(state, marked=marked)
        while (request := stream.request()) is not None:
            requests += 1
            if state.phase is not Phase.thinking:
                state.advance(model.generate(request))
                continue
            writer = ThinkingStream(SampleState([], state.policy, **{k: getattr(state, k) for k in (
                "thinking_tokens", "spent", "extensions")}), body=list(stream.body), marked=marked)
            written, stand_ins = [], set()

            def write(choice: int) -> int:
                forced = writer.forced_next()
                token = forced if forced is not None else writer.stand_in(choice) if writer.stands_in() else choice
                stood_in = marked and forced is None and token != choice
                if stood_in:
                    stand_ins.add(len(written))
                writer.take(token, stood_in)
                written.append(token)
                return token

            stream.read(model.generate(request, write), stand_ins)
    return requests


def _outcome(states: list[SampleState]) -> list[tuple]:
    return [(s.generated, s.thinking_tokens, s.spent, s.extensions, s.extension_offsets, s.capped, s.hit_limit,
             s.rounds, s.thinking_end, s.answer_begin) for s in states]


def _states(mode: BudgetMode, tokens, times, extension: tuple[int, ...]) -> list[SampleState]:
    policy = ForcingPolicy(mode=mode, tokens=tokens, times=times, thinking_limit=80, answer_limit=5, think_end_id=THINK_END,
                           end_ids=(END,), extension_ids=extension, answer_open_ids=(OPEN,), cap_ids=(CAP, CAP),
                           rule=MODES[mode].rule)
    return [SampleState([0, sample], policy) for sample in range(6)]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("mode,tokens,times", [(BudgetMode.min, 60, None), (BudgetMode.ignore, None, 3),
                                               (BudgetMode.max, 25, None), (BudgetMode.none, None, None)])
@pytest.mark.parametrize("extension", [(EXT,), (EXT, 91, 92), ()])
@pytest.mark.parametrize("marked", [False, True])
def test_in_stream_forcing_reads_back_the_same_rounds(seed: int, mode: BudgetMode, tokens, times, extension, marked):
    model = ContextModel(seed, stop_chance=0.1, extension_chance=0.05)  # its own EXT tokens: pauses unless marked
    rounds = _states(mode, tokens, times, extension)
    run_forcing(lambda requests: [model.generate(r) for r in requests], rounds)
    streamed = _states(mode, tokens, times, extension)
    requests = in_stream(model, streamed, marked)
    assert _outcome(streamed) == _outcome(rounds)
    if extension and mode in (BudgetMode.min, BudgetMode.ignore):
        assert sum(s.extensions for s in rounds) > 0
    if marked and extension == (EXT,):  # no pauses, and a one-token extension ends no generation short
        assert requests == 2 * len(streamed)


@pytest.mark.parametrize("mode,tokens,times", [(BudgetMode.min, 60, None), (BudgetMode.ignore, None, 3)])
@pytest.mark.parametrize("marked", [False, True])
def test_in_stream_forcing_needs_one_thinking_request_however_often_it_extends(mode: BudgetMode, tokens, times, marked):
    model = ContextModel(0, stop_chance=0.1, extension_chance=0.0)
    rounds = _states(mode, tokens, times, (EXT,))
    run_forcing(lambda requests: [model.generate(r) for r in requests], rounds)
    streamed = _states(mode, tokens, times, (EXT,))
    assert in_stream(model, streamed, marked) == 2 * len(streamed)  # thinking, answer
    assert sum(s.rounds for s in rounds) > 3 * len(rounds) and _outcome(streamed) == _outcome(rounds)


def test_a_pause_continues_the_stream_with_the_models_own_extension_token():
    # The model emits the extension's first token itself inside the window: written as the delimiter, it
    # ends the generation, and the next request carries it as the model's thinking token.
    policy = scripted_policy(BudgetMode.min, 10)
    state = SampleState([0], policy)
    stream = ThinkingStream(state)
    stream.read([11, THINK_END])
    assert stream.body == [11, EXT] and state.phase is Phase.thinking and state.extensions == 0
    assert stream.request() == Request([0, 11, EXT], policy.thinking_limit - 2, (THINK_END, END))
    stream.read([EXT, 12, THINK_END])  # an extension for a stop, then a pause again
    assert state.generated == [11, EXT, EXT] and state.extension_offsets == [2] and stream.body == [12, EXT]


def test_marks_tell_a_stand_in_from_the_models_own_extension_token():
    # Greedy engines tell where they stood in: the model's own extension token is thinking, no pause.
    state = SampleState([0], scripted_policy(BudgetMode.min, 10))
    stream = ThinkingStream(state, marked=True)
    stream.read([11, EXT, 12, EXT, 13], stand_ins={3})
    assert state.generated == [11, EXT, 12, EXT] and state.extension_offsets == [3]
    assert state.thinking_tokens == 3 and state.extensions == 1 and stream.body == [13]


def test_a_stand_in_is_only_read_where_one_can_be_written():
    # A position reported as stood in (say, a model token tied at the top of the raw logprobs) is read as a
    # stand-in only where a stand-in can be: the extension's first token inside the window.
    state = SampleState([0], scripted_policy(BudgetMode.min, 3))
    stream = ThinkingStream(state, marked=True)
    stream.read([11, 12, 13, 14, EXT, 15], stand_ins={1, 4, 5})
    assert state.extensions == 0 and stream.body == [11, 12, 13, 14, EXT, 15]


# --- the same guarantees with the real transformers engine on a tiny model --------------------------

def _run(fmt, engine, prompts, budget: BudgetConfig, extend: str = "Wait", limit: int = 120):
    policy = forcing_policy(fmt, EvalConfig(max_thinking_tokens=limit, max_answer_tokens=8), budget,
                            ExtendConfig(name=extend.lower() or "none", string=extend))
    states = [SampleState(p, policy) for p in prompts]
    run_forcing(engine.generate, states)
    return states


def test_hf_min_forces_extensions_until_the_budget(eager_stopper):
    fmt, engine, prompts = eager_stopper
    states = _run(fmt, engine, prompts, budget_config(BudgetMode.min, tokens=40))
    assert sum(s.extensions for s in states) > 0, "the fixture model should try to stop early"
    for s in states:
        assert s.thinking_tokens >= 40 or s.hit_limit
        wait = fmt.encode("Wait")
        assert len(s.extension_offsets) == s.extensions
        for offset in s.extension_offsets:
            assert s.generated[offset: offset + len(wait)] == wait
        assert fmt.tokenizer.decode(s.generated[: s.thinking_end]).count("Wait") >= s.extensions
        assert fmt.think_end_id not in s.generated[: s.thinking_end]


def test_hf_ignore_appends_the_string_exactly_k_times(eager_stopper):
    fmt, engine, prompts = eager_stopper
    states = _run(fmt, engine, prompts, budget_config(BudgetMode.ignore, times=2), extend="Hmm", limit=400)
    hmm = fmt.encode("Hmm")
    assert any(s.extensions == 2 for s in states)
    for s in states:
        assert s.extensions == 2 or (s.extensions < 2 and s.hit_limit)
        assert all(s.generated[o: o + len(hmm)] == hmm for o in s.extension_offsets)


def test_hf_none_extension_appends_nothing(eager_stopper):
    fmt, engine, prompts = eager_stopper
    states = _run(fmt, engine, prompts, budget_config(BudgetMode.min, tokens=40), extend="")
    assert sum(s.extensions for s in states) > 0
    for s in states:
        assert s.thinking_tokens == s.thinking_end  # nothing but the model's own tokens in the thinking
        assert fmt.think_end_id not in s.generated[: s.thinking_end]


@pytest.mark.parametrize("cap", [1, 16, 45])
def test_hf_max_caps_thinking(tiny_model_dir: Path, cap: int):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    fmt = S1Format(tokenizer, ModelConfig(name="tiny", path=str(tiny_model_dir)))
    engine = HFEngine(load_model(str(tiny_model_dir), "float32"), tokenizer, batch_size=4, temperature=0.0)
    states = _run(fmt, engine, [fmt.encode(fmt.prompt(q)) for q in EAGER_QUESTIONS], budget_config(BudgetMode.max, tokens=cap))
    for s in states:
        assert s.thinking_tokens <= cap
        if s.capped:
            text = fmt.tokenizer.decode(s.generated[s.thinking_end: s.answer_begin])
            assert text == "\n<|im_start|>answer\nFinal Answer:"
    assert any(s.capped for s in states), "a random model rarely stops by itself: the cap must fire"


@pytest.mark.parametrize("stopper", [False, True])
@pytest.mark.parametrize("extensions", [[], [0, 1, 3]])
def test_scale_equals_separate_runs(tiny_model_dir: Path, eager_stopper, stopper: bool, extensions: list[int]):
    """One generation, branched, gives exactly the records of separate runs per cap and per extension count."""
    from s1x.evaluate.generation import evaluate_curve, evaluate_rows

    if stopper:
        fmt, engine, _ = eager_stopper
    else:
        tokenizer = load_tokenizer(str(tiny_model_dir))
        fmt = S1Format(tokenizer, ModelConfig(name="tiny", path=str(tiny_model_dir)))
        engine = HFEngine(load_model(str(tiny_model_dir), "float32"), tokenizer, batch_size=4, temperature=0.0)
    rows = [{"id": str(i), "question": q, "answer": "5"} for i, q in enumerate(EAGER_QUESTIONS)]
    eval_cfg = EvalConfig(max_thinking_tokens=60, max_answer_tokens=8)
    extend = ExtendConfig(name="wait", string="Wait")
    caps = [3, 7, 20, 60]
    calls = []
    engine_generate = engine.generate

    def counting(requests, seed=0):
        calls.append(len(requests))
        return engine_generate(requests, seed)

    engine.generate = counting
    budget = budget_config(BudgetMode.scale, caps=caps, extensions=extensions)
    branched = evaluate_curve(fmt, engine, eval_cfg, budget, extend, rows, "t")
    branched_calls = list(calls)
    separate = {str(cap): budget_config(BudgetMode.max, tokens=cap) for cap in caps}
    separate |= {f"+{k}": budget_config(BudgetMode.ignore, times=k) if k else budget_config(BudgetMode.none)
                 for k in extensions}
    separate = {label: evaluate_rows(fmt, engine, forcing_policy(fmt, eval_cfg, b, extend), rows, "t")
                for label, b in separate.items()}
    engine.generate = engine_generate
    assert branched == separate
    assert any(r["capped"] for r in branched["3"]) and any(r["thinking_tokens"] < 20 for r in branched["20"]) == stopper
    if extensions and stopper:
        most = [r["extensions"] for r in branched["+3"]]
        assert max(most) >= 2 and [r["extensions"] for r in branched["+1"]] == [min(1, n) for n in most]  # +1 cut at a later stop
        # the tiny tokenizer, trained on the embedded pool, makes "Wait" a word the model writes itself too
        assert all(r["text"].count("Wait") >= min(1, n) for r, n in zip(branched["+1"], most))
    assert len(branched_calls) < len(calls) - len(branched_calls)  # fewer engine rounds than separate runs


def test_prompt_conditioned_baselines_state_the_budget_and_force_nothing(tiny_model_dir: Path):
    from s1x.evaluate.modes.class_conditional import LengthClass
    from s1x.evaluate.generation import evaluate_rows
    from s1x.evaluate.modes import MODES
    budget_instruction = lambda budget: MODES[budget.mode].instruction(budget)  # noqa: E731

    tokenizer = load_tokenizer(str(tiny_model_dir))
    fmt = S1Format(tokenizer, ModelConfig(name="tiny", path=str(tiny_model_dir)))
    assert budget_instruction(budget_config(BudgetMode.token_conditional, tokens=512)) == "Think for up to 512 tokens."
    assert "8 steps" in budget_instruction(budget_config(BudgetMode.step_conditional, steps=8))
    short, long = (budget_instruction(budget_config(BudgetMode.class_conditional, length_class=c)) for c in LengthClass)
    assert short != long and short and long
    engine = HFEngine(load_model(str(tiny_model_dir), "float32"), tokenizer, batch_size=4, temperature=0.0)
    budget = budget_config(BudgetMode.token_conditional, tokens=16, think_prefix="Let me")
    policy = forcing_policy(fmt, EvalConfig(max_thinking_tokens=30, max_answer_tokens=4), budget, ExtendConfig(name="wait", string="Wait"))
    records = evaluate_rows(fmt, engine, policy, [{"id": "0", "question": EAGER_QUESTIONS[0], "answer": "5"}], "t", budget)
    assert records[0]["prompt"].endswith("Compute 2 + 3.\n\nThink for up to 16 tokens.<|im_end|>\n<|im_start|>assistant\n<|im_start|>think\nLet me")
    assert records[0]["extensions"] == 0 and not records[0]["capped"]


def test_rejection_sampling_redraws_until_the_thinking_fits(eager_stopper):
    from s1x.evaluate.generation import evaluate_rows

    fmt, engine, prompts = eager_stopper
    engine.temperature = 1.0
    budget = budget_config(BudgetMode.rejection, tokens=30, max_attempts=6)
    policy = forcing_policy(fmt, EvalConfig(max_thinking_tokens=80, max_answer_tokens=4, temperature=1.0), budget,
                            ExtendConfig(name="wait", string="Wait"))
    rows = [{"id": str(i), "question": q, "answer": "5"} for i, q in enumerate(EAGER_QUESTIONS)]
    records = evaluate_rows(fmt, engine, policy, rows, "t", budget)
    for r in records:
        assert r["thinking_tokens"] <= 30 or r["attempts"] == 6
        assert 1 <= r["attempts"] <= 6
    assert any(r["attempts"] > 1 for r in records) and any(r["thinking_tokens"] <= 30 for r in records)


def test_no_wait_requests_suppress_only_while_thinking():
    from dataclasses import replace

    state = SampleState([1, 2], replace(scripted_policy(BudgetMode.no_wait, None), suppress_ids=(17, 18)))
    thinking = state.request()
    assert thinking.suppress_ids == (17, 18) and thinking.stop_ids == (THINK_END, END)
    state.advance([10, 11, THINK_END])  # the model ends its thinking: no_wait never extends it
    answer = state.request()
    assert state.phase is Phase.answer and state.extensions == 0 and answer.suppress_ids == ()
    with pytest.raises(ConfigError, match="budget.suppress"):
        check_budget(budget_config(BudgetMode.no_wait), EvalConfig())


def test_curve_branches_send_each_distinct_request_once():
    from s1x.evaluate.budget import Request
    from s1x.evaluate.curve import _once_per_request

    sent = []

    def generate(requests):
        sent.extend(requests)
        return [[sum(r.prompt_ids) + r.max_new_tokens] for r in requests]

    requests = [Request([1, 2], 8, (0,)), Request([1, 2], 8, (0,)), Request([1, 2], 9, (0,)), Request([3], 8, (0,)),
                Request([1, 2], 8, (0,))]
    assert _once_per_request(generate)(requests) == [[11], [11], [12], [11], [11]]
    assert [(r.prompt_ids, r.max_new_tokens) for r in sent] == [([1, 2], 8), ([1, 2], 9), ([3], 8)]
