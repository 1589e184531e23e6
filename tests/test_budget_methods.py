"""The budget modes after s1 (entropy, early_exit, schedule) in the forcing state machine, against a scripted
model of its whole context, then on the real transformers engine; their settings' checks and store keys."""
from __future__ import annotations

import random
from collections import Counter
from types import SimpleNamespace

import pytest
import torch

from s1x.config import BudgetConfig, BudgetMode, ConfigError, EvalConfig, ExtendConfig
from s1x.evaluate.modes import budget_config
from s1x.evaluate.budget import ForcingPolicy, Phase, Request, SampleState, run_forcing
from s1x.evaluate.engines.hf import HFEngine
from s1x.evaluate.policy import forcing_policy
from s1x.evaluate.modes import MODES, check_budget
from s1x.evaluate.vocabulary import transition_token_ids
from tests.test_budget import CAP, END, EXT, OPEN, THINK_END

TRANSITION = 30
RUNS_ON = 19  # an answer after this thinking token never ends (its probe is cut by the token limit)


class ScriptedContextModel:
    """A deterministic model of its whole context. Thinking: tokens 10..19, sometimes a transition token or a
    stop. After the answer cue (CAP) or the answer opening (OPEN): an answer that depends on the last
    thinking token (three possible answers), then END. Its next-token entropy is a draw from the context too."""

    def __init__(self, seed: int, stop_chance: float = 0.06, transition_chance: float = 0.15) -> None:
        self.seed, self.stop_chance, self.transition_chance = seed, stop_chance, transition_chance

    def _rng(self, context: list[int]) -> random.Random:
        return random.Random(hash((self.seed, len(context), tuple(context[-4:]))))

    def __call__(self, context: list[int]) -> int:
        cue = max((i for i, t in enumerate(context) if t in (CAP, OPEN)), default=None)
        if cue is not None:  # answering: [answer, 50, END], or on and on after RUNS_ON
            last_thought, written = context[cue - 1], len(context) - cue - 1
            if last_thought == RUNS_ON:
                return 50
            return [60 + last_thought % 3, 50, END][min(written, 2)]
        draw = self._rng(context).random()
        if draw < self.stop_chance:
            return THINK_END
        return TRANSITION if draw < self.stop_chance + self.transition_chance else 10 + self._rng(context).randrange(10)

    def generate(self, requests: list[Request]) -> list[list[int]]:
        outputs = []
        for request in requests:
            context, out = list(request.prompt_ids), []
            while len(out) < request.max_new_tokens and (not out or out[-1] not in request.stop_ids):
                out.append(self(context))
                context.append(out[-1])
            outputs.append(out)
        return outputs

    def entropy(self, contexts: list[list[int]]) -> list[float]:
        # ints only: a str's hash changes with every interpreter (PYTHONHASHSEED), and the draws must not
        return [random.Random(hash((self.seed, -5, tuple(c)))).uniform(0.0, 2.0) for c in contexts]


def policy(mode: BudgetMode, limit: int = 200, **settings) -> ForcingPolicy:
    return ForcingPolicy(mode=mode, tokens=settings.pop("tokens", None), times=settings.pop("times", None),
                         thinking_limit=limit, answer_limit=5, think_end_id=THINK_END, end_ids=(END,),
                         extension_ids=(EXT,), answer_open_ids=(OPEN,), cap_ids=(CAP,), rule=MODES[mode].rule, **settings)


def _thinking(state: SampleState) -> list[int]:
    return state.generated[: state.thinking_end]


# --- entropy -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("times", [1, 3])
def test_entropy_extends_exactly_where_the_model_stops_above_the_threshold(seed: int, times: int):
    model = ScriptedContextModel(seed, transition_chance=0.0)
    measured: list[list[int]] = []

    def measure(contexts: list[list[int]]) -> list[float]:
        measured.extend(contexts)
        return model.entropy(contexts)

    states = [SampleState([0, i], policy(BudgetMode.entropy, times=times, threshold=1.0)) for i in range(8)]
    run_forcing(model.generate, states, measurer=SimpleNamespace(entropy=measure))
    for s in states:
        contexts = [c for c in measured if c[:2] == s.prompt_ids]
        # Each stop the model made (with extensions to spare) was measured where it stopped, and decided by it.
        assert s.entropies == model.entropy(contexts)
        above = [entropy > 1.0 for entropy in s.entropies]
        assert above == [True] * s.extensions + [False] * (len(above) - s.extensions)
        assert [s.prompt_ids + s.generated[:offset] for offset in s.extension_offsets] == contexts[: s.extensions]
        assert all(s.generated[offset] == EXT for offset in s.extension_offsets)
        if s.hit_limit:
            continue
        if s.extensions < times:  # thinking ended at the first stop at or below the threshold
            assert len(above) == s.extensions + 1 and s.thinking_end == len(contexts[-1]) - 2
        else:  # out of extensions: the next stop ends thinking unmeasured
            assert len(above) == times
        assert THINK_END not in _thinking(s) and s.generated[s.thinking_end: s.answer_begin] == [OPEN]
    decisions = Counter(entropy > 1.0 for s in states for entropy in s.entropies)
    assert decisions[True] > 0 and decisions[False] > 0


def test_entropy_needs_an_engine_that_measures():
    model = ScriptedContextModel(0, stop_chance=1.0)
    with pytest.raises(ValueError, match="entropy"):
        run_forcing(model.generate, [SampleState([0], policy(BudgetMode.entropy, times=1, threshold=1.0))])


# --- early_exit ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("agree", [1, 2, 3])
def test_early_exit_ends_after_k_agreeing_probes_and_never_before(seed: int, agree: int):
    model = ScriptedContextModel(seed, stop_chance=0.01, transition_chance=0.0)
    states = [SampleState([0, i], policy(BudgetMode.early_exit, probe_every=7, probe_tokens=4, agree=agree))
              for i in range(8)]
    run_forcing(model.generate, states)
    for s in states:
        assert [p.at for p in s.probes] == [7 * (i + 1) for i in range(len(s.probes))]  # every N thinking tokens
        for probe in s.probes:  # read from the shared prefix with the answer cue forced, never kept
            assert [probe.ids] == model.generate([Request(s.prompt_ids + s.generated[: probe.at] + [CAP], 4, (END,))])
            assert probe.answer == (tuple(probe.ids[:-1]) if probe.ids[-1] == END else None)
        answers = [p.answer for p in s.probes]
        agreeing = [len(set(answers[i - agree + 1: i + 1])) == 1 and answers[i] is not None
                    for i in range(agree - 1, len(answers))]
        assert s.exited == (bool(agreeing) and agreeing[-1])
        assert not any(agreeing[:-1]), "thinking must end at the first k agreeing probes"
        assert set(_thinking(s)) <= set(range(10, 20))
        if s.exited:
            assert s.thinking_tokens == s.probes[-1].at and s.generated[s.thinking_end: s.answer_begin] == [CAP]
    assert agree == 3 or any(s.exited for s in states)
    assert agree == 1 or any(len(s.probes) > agree for s in states), "some probes should disagree first"


def test_early_exit_probes_only_where_thinking_goes_on():
    model = ScriptedContextModel(0, stop_chance=1.0)  # stops at once: no probe is due
    state = SampleState([0], policy(BudgetMode.early_exit, probe_every=5, probe_tokens=4, agree=2))
    run_forcing(model.generate, [state])
    assert state.probes == [] and not state.exited and state.generated[:1] == [OPEN]
    limited = SampleState([0], policy(BudgetMode.early_exit, limit=10, probe_every=5, probe_tokens=4, agree=9))
    run_forcing(ScriptedContextModel(0, stop_chance=0.0).generate, [limited])
    assert [p.at for p in limited.probes] == [5] and limited.hit_limit  # none at the limit: the limit ends it


# --- schedule ------------------------------------------------------------------------------------------

def _schedule(seeds, probability: float = 0.9, alpha: int = 40) -> list[SampleState]:
    p = policy(BudgetMode.schedule, alpha_tokens=alpha, probability=probability, transition_ids=(TRANSITION,))
    return [SampleState([0, i], p, seed=seed) for i, seed in enumerate(seeds)]


def _outcome(states: list[SampleState]) -> list[tuple]:
    return [(s.generated, s.thinking_tokens, s.extension_offsets, s.capped, s.rounds) for s in states]


def test_schedule_follows_its_seed():
    model = ScriptedContextModel(3, stop_chance=0.01)
    first, again, other = _schedule(range(8)), _schedule(range(8)), _schedule(range(100, 108))
    for states in (first, again, other):
        run_forcing(model.generate, states)
    assert _outcome(first) == _outcome(again)
    assert [s.extension_offsets for s in first] != [s.extension_offsets for s in other]
    for s in first:  # replay the draws: one at each transition token before the alpha moment
        draws, thought, expected = random.Random(s.seed), 0, []
        for position, token in enumerate(_thinking(s)):
            if position in s.extension_offsets:
                continue
            thought += 1
            if token == TRANSITION and thought >= 40:
                assert position == s.thinking_end - 1, "the first transition after the alpha moment ends thinking"
            elif token == TRANSITION and draws.random() < 0.9 * (1 - thought / 40):
                expected.append(position + 1)
        assert s.extension_offsets == expected
        if s.capped:  # ended at a transition after the alpha moment, with the answer cue
            assert s.generated[s.thinking_end - 1] == TRANSITION and s.thinking_tokens >= 40
            assert s.generated[s.thinking_end: s.answer_begin] == [CAP]
    assert sum(s.extensions for s in first) > 4 and any(s.capped for s in first)


def test_schedule_without_insertions_is_plain_thinking_ended_at_a_transition():
    model = ScriptedContextModel(1, stop_chance=0.0, transition_chance=0.3)
    states = _schedule(range(4), probability=0.0)
    run_forcing(model.generate, states)
    plain = [SampleState([0, i], policy(BudgetMode.none, limit=200)) for i in range(4)]
    run_forcing(model.generate, plain)
    for s, p in zip(states, plain):
        assert s.extensions == 0 and s.capped
        end = s.thinking_end
        assert s.generated[:end] == p.generated[:end] and s.generated[end - 1] == TRANSITION and s.thinking_tokens >= 40
        assert TRANSITION not in p.generated[39: end - 1]


# --- settings ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("budget,key", [
    (dict(mode="entropy", times=2), "budget.threshold"),
    (dict(mode="entropy", threshold=-1.0, times=2), "budget.threshold"),
    (dict(mode="entropy", threshold=1.0), "budget.times"),
    (dict(mode="early_exit"), "budget.probe_every"),
    (dict(mode="early_exit", probe_every=8, agree=0), "budget.agree"),
    (dict(mode="schedule", tokens=64), "budget.probability"),
    (dict(mode="schedule", tokens=64, probability=1.5), "budget.probability"),
    (dict(mode="schedule", tokens=64, probability=0.5, alpha=0.0), "budget.alpha"),
    (dict(mode="schedule", probability=0.5), "budget.tokens"),
    (dict(mode="schedule", tokens=64, probability=0.5, transition=""), "budget.transition"),
])
def test_a_bad_setting_names_its_key(budget: dict, key: str):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check_budget(budget_config(BudgetMode(budget.pop("mode")), **budget), EvalConfig())


# --- the real transformers engine on the tiny model ----------------------------------------------------

def _run(fmt, engine: HFEngine, prompts, budget: BudgetConfig, limit: int = 120) -> list[SampleState]:
    p = forcing_policy(fmt, EvalConfig(max_thinking_tokens=limit, max_answer_tokens=8), budget,
                       ExtendConfig(name="wait", string="Wait"))
    states = [SampleState(ids, p, seed=i) for i, ids in enumerate(prompts)]
    engine.force(states)
    return states


def test_hf_entropy_is_the_next_token_distributions(eager_stopper):
    fmt, engine, prompts = eager_stopper
    with torch.no_grad():
        logits = engine.model(input_ids=torch.tensor([prompts[1]])).logits[0, -1].double()
    probabilities = logits.softmax(-1)
    expected = float(-(probabilities * probabilities.log()).sum())
    # Batched with left padding, next to a longer context: the same value as alone.
    assert engine.entropy([prompts[0] + prompts[1], prompts[1]])[1] == pytest.approx(expected, rel=1e-5)


def test_hf_confidences_are_minus_the_mean_top_k_logprob_where_each_token_was_drawn(eager_stopper):
    fmt, engine, prompts = eager_stopper
    context = prompts[1] + [5, 9, 11]
    with torch.no_grad():
        logprobs = engine.model(input_ids=torch.tensor([context])).logits[0].double().log_softmax(-1)
    start = len(prompts[1])
    expected = [float(-logprobs[position - 1].topk(3).values.mean()) for position in range(start, len(context))]
    # Batched with left padding beside a longer context: the same values as alone, one per token from `start`.
    found = engine.confidences([prompts[0] + context, context], [len(prompts[0]) + start, start], top_k=3)
    assert found[1] == pytest.approx(expected, rel=1e-5)
    assert len(found[0]) == len(found[1]) == 3 and all(value > 0 for value in found[0] + found[1])


def test_hf_entropy_mode_decides_each_stop_by_its_entropy(eager_stopper):
    fmt, engine, prompts = eager_stopper
    always = _run(fmt, engine, prompts, budget_config(BudgetMode.entropy, threshold=0.0, times=3))
    values = sorted(e for s in always for e in s.entropies)
    assert all(s.extensions == len(s.entropies) for s in always) and len(values) > 4
    threshold = (values[len(values) // 2 - 1] + values[len(values) // 2]) / 2
    states = _run(fmt, engine, prompts, budget_config(BudgetMode.entropy, threshold=threshold, times=3))
    for s in states:
        assert s.extensions == sum(e > threshold for e in s.entropies) <= 3
        assert fmt.think_end_id not in _thinking(s)
    assert {e > threshold for s in states for e in s.entropies} == {True, False}


def test_hf_early_exit_probes_from_the_shared_prefix(eager_stopper):
    fmt, engine, prompts = eager_stopper
    states = _run(fmt, engine, prompts, budget_config(BudgetMode.early_exit, probe_every=3, probe_tokens=6, agree=2))
    cue = fmt.encode("\n<|im_start|>answer\nFinal Answer:")
    for s in states:
        for probe in s.probes:
            alone = engine.generate([Request(s.prompt_ids + s.generated[: probe.at] + cue, 6, (fmt.end_of_turn_id,))])
            assert probe.ids == alone[0]
    assert any(s.probes for s in states)


def test_hf_schedule_inserts_at_transitions(eager_stopper):
    fmt, engine, prompts = eager_stopper
    plain = _run(fmt, engine, prompts, budget_config(BudgetMode.none))
    common = Counter(fmt.tokenizer.decode([t]) for s in plain for t in _thinking(s)).most_common(1)[0][0]
    budget = budget_config(BudgetMode.schedule, tokens=30, alpha=1.0, probability=1.0, transition=common)
    transitions = set(transition_token_ids(fmt.tokenizer, common))
    states = _run(fmt, engine, prompts, budget)
    wait = fmt.encode("Wait")
    for s in states:
        for offset in s.extension_offsets:
            assert s.generated[offset - 1] in transitions and s.generated[offset: offset + len(wait)] == wait
    assert sum(s.extensions for s in states) > 0
    assert all(s.generated[s.thinking_end - 1] in transitions and s.thinking_tokens >= 30 for s in states if s.capped)
    assert [s.extension_offsets for s in states] == [s.extension_offsets for s in _run(fmt, engine, prompts, budget)]


def test_new_modes_key_only_their_own_settings(tmp_path):
    from hydra import compose, initialize_config_dir

    from s1x.schemas import register
    from s1x.keys import planned_keys
    from s1x.validate import validated
    from tests.conftest import ROOT

    register()

    def keys(*overrides: str) -> dict:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            return planned_keys(validated(compose("config", overrides=[f"store_dir={tmp_path}", *overrides])))

    assert keys("budget=entropy", "budget.threshold=0.5") != keys("budget=entropy", "budget.threshold=0.7")
    assert keys("budget=entropy", "extend=hmm") != keys("budget=entropy", "extend=wait")  # it appends the string
    assert keys("budget=schedule", "extend=hmm") != keys("budget=schedule", "extend=wait")
    assert keys("budget=early_exit", "extend=hmm") == keys("budget=early_exit", "extend=wait")  # it never extends
    assert keys("budget=early_exit", "budget.agree=2") != keys("budget=early_exit", "budget.agree=3")


def test_a_probing_state_asks_for_a_short_answer_after_the_cue():
    state = SampleState([7], policy(BudgetMode.early_exit, probe_every=2, probe_tokens=3, agree=2))
    assert state.request() == Request([7], 2, (THINK_END, END))
    state.advance([11, 12])
    assert state.phase is Phase.probing and state.request() == Request([7, 11, 12, CAP], 3, (END,))
    state.advance([60, END])
    assert state.phase is Phase.thinking and state.generated == [11, 12]
