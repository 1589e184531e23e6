"""budget=deepconf (arXiv 2508.15260): confidences, the offline filter, the online threshold, stop and consensus."""
from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

from s1x.config import BudgetMode, ConfigError, EvalConfig
from s1x.evaluate.modes import budget_config
from s1x.evaluate.budget import ForcingPolicy, Phase, SampleState, run_forcing
from s1x.evaluate.engines.hf import HFEngine
from s1x.evaluate.generation import evaluate_rows
from s1x.evaluate.modes import MODES, check_budget
from s1x.evaluate.modes.deepconf import _leads, lowest_group, quantile, vote
from s1x.evaluate.policy import forcing_policy
from s1x.config import ExtendConfig
from tests.conftest import EAGER_QUESTIONS, make_eager_stopper

THINK_END, END, OPEN, CAP = 90, 91, 92, 93


def test_lowest_group_is_the_lowest_window_mean():
    assert lowest_group([3.0, 1.0, 2.0, 6.0], window=2) == 1.5  # (1 + 2) / 2
    assert lowest_group([3.0, 1.0], window=4) == 2.0  # fewer tokens than a window: their mean
    assert lowest_group([], window=4) == 0.0
    assert quantile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5 and quantile([5.0], 0.9) == 5.0
    assert quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.9) == pytest.approx(4.6)


def _record(question: str, answer: str, correct: bool, confidence: float, kept: bool, tokens: int = 10) -> dict:
    return {"id": question, "extracted": answer, "correct": correct, "thinking_tokens": tokens,
            "extras": {"confidence": confidence, "kept": kept}}


def test_the_vote_weights_kept_answers_by_confidence():
    records = [
        # q1: "4" has two kept traces (1.0 + 1.5) against "5"'s one very confident (3.0): "5" wins, and is right.
        _record("q1", "4", False, 1.0, True), _record("q1", "4", False, 1.5, True), _record("q1", "5", True, 3.0, True),
        # q2: the most confident trace was not kept (filtered), so "7" (kept) wins, wrongly.
        _record("q2", "8", True, 9.0, False), _record("q2", "7", False, 2.0, True),
        # q3: nothing kept: no answer, wrong; its tokens still count.
        _record("q3", "1", True, 1.0, False, tokens=40),
    ]
    assert vote(records) == {"accuracy": pytest.approx(1 / 3), "thinking_tokens": pytest.approx((30 + 20 + 40) / 3)}


@pytest.mark.parametrize("settings, message", [
    (dict(samples=1), "eval.samples must be at least 2"),
    (dict(warmup=8), "budget.warmup must be below eval.samples"),
    (dict(keep=0.0), "budget.keep must be a share"),
    (dict(consensus=1.5), "budget.consensus must be a share"),
    (dict(window=0), "budget.window must be positive"),
])
def test_settings_it_cannot_run_with_name_their_key(settings: dict, message: str):
    eval_keys = {"temperature", "samples"}
    eval_cfg = EvalConfig(**{"temperature": 0.6, "samples": 8, **{k: v for k, v in settings.items() if k in eval_keys}})
    budget = budget_config(BudgetMode.deepconf, **{k: v for k, v in settings.items() if k not in eval_keys})
    with pytest.raises(ConfigError, match=message):
        check_budget(budget, eval_cfg)


def _policy(limit: int = 40) -> ForcingPolicy:
    return ForcingPolicy(mode=BudgetMode.deepconf, tokens=None, times=None, thinking_limit=limit, answer_limit=3,
                         think_end_id=THINK_END, end_ids=(END,), extension_ids=(), answer_open_ids=(OPEN,),
                         cap_ids=(CAP,), rule=MODES[BudgetMode.deepconf].rule)


def test_an_online_trace_is_measured_every_window_and_stops_below_its_threshold():
    """A scripted model thinks token 1 (confidence 2.0) until its 9th token, then token 2 (confidence 0.5)."""
    confidence = {1: 2.0, 2: 0.5}
    requests = []

    def generate(batch):
        requests.extend(batch)
        return [[1 if len(r.prompt_ids) - 1 < 8 else 2 for _ in range(r.max_new_tokens)] for r in batch]

    measurer = SimpleNamespace(confidences=lambda contexts, starts, top_k: [[confidence[t] for t in c[s:]]
                                                                             for c, s in zip(contexts, starts)])
    notes = dict(threshold=1.5, window=4, top_k=3)
    online, warm = SampleState([0], _policy(), notes=dict(notes)), SampleState([0], _policy())
    run_forcing(generate, [online], measurer=measurer)
    # Windows of 4: [2,2,2,2] and [2,2,2,2] pass; the third window [.5]*4 falls below 1.5 after 12 tokens.
    assert online.phase is Phase.done and online.notes["stopped"] and online.thinking_tokens == 12
    assert [r.max_new_tokens for r in requests] == [4, 4, 4] and online.generated[online.answer_begin:] == []
    run_forcing(generate, [warm], measurer=measurer)  # a warm-up trace (no threshold) thinks to the limit unmeasured
    assert warm.thinking_tokens == 40 and "stopped" not in warm.notes and warm.hit_limit


class ScriptedDraws:
    """Draws whose traces' answers and confidences are given per (row, sample): what `Mode.sample` sees."""

    def __init__(self, answers: dict[tuple[int, int], tuple[str, float]], rows: int) -> None:
        self.answers, self.rows, self.drawn = answers, [{}] * rows, []

    def draw(self, indices, sample, notes=None, on_finished=None):
        self.drawn.append((sample, list(indices)))
        states = [SampleState([row, sample], _policy(), notes=dict(notes[i]) if notes else {}) for i, row in enumerate(indices)]
        on_finished(states)
        return states, [1] * len(states)

    def confidences(self, states, top_k, measured):
        return [[self.answers[tuple(s.prompt_ids)][1]] for s in states]

    def records(self, indices, states, attempts, sample):
        return [{"id": row, "sample": sample, "extracted": self.answers[(row, sample)][0], "thinking_tokens": 5,
                 "correct": self.answers[(row, sample)][0] == "1", "extras": MODES[BudgetMode.deepconf].rule.extras(s, str)}
                for row, s in zip(indices, states)]


def test_online_sets_each_questions_threshold_from_its_warm_up_and_stops_at_consensus():
    # Row 0 agrees from the start: after its 2 warm-up traces "1" holds all the kept weight.
    # Row 1 splits, so it draws every sample; its threshold is the median of its warm-up's confidences, 2.0, and
    # both warm-up traces vote.
    answers = {(0, s): ("1", 1.0) for s in range(4)}
    answers |= {(1, 0): ("1", 1.0), (1, 1): ("2", 3.0), (1, 2): ("1", 2.5), (1, 3): ("2", 0.5)}
    draws = ScriptedDraws(answers, rows=2)
    budget = budget_config(BudgetMode.deepconf, warmup=2, keep=0.5, consensus=0.9)
    found = MODES[BudgetMode.deepconf].sample(draws, budget, 4)
    assert draws.drawn == [(0, [0, 1]), (1, [0, 1]), (2, [1]), (3, [1])]
    row1 = [r["extras"] for r in found if r["id"] == 1]
    assert [e["threshold"] for e in row1] == [2.0] * 4
    assert [e["kept"] for e in row1] == [True, True, True, False]  # 0.5 falls below 2.0
    assert vote(found)["accuracy"] == 1.0  # row 1: "1" (1.0 + 2.5) beats "2" (3.0; its 0.5 trace not kept)


def test_offline_keeps_the_most_confident_share_of_each_questions_traces():
    answers = {(0, 0): ("1", 1.0), (0, 1): ("2", 4.0), (0, 2): ("1", 2.0), (0, 3): ("1", 0.5)}
    draws = ScriptedDraws(answers, rows=1)
    found = MODES[BudgetMode.deepconf].sample(draws, budget_config(BudgetMode.deepconf, keep=0.5), 4)
    assert [r["extras"]["kept"] for r in found] == [False, True, True, False]
    assert [r["extras"]["confidence"] for r in found] == [1.0, 4.0, 2.0, 0.5] and vote(found)["accuracy"] == 0.0


@pytest.mark.parametrize("warmup", [0, 3])
def test_on_the_hf_engine_each_trace_is_scored_on_its_own_thinking(tiny_model_dir, warmup: int):
    fmt, tokenizer, model, _, _ = make_eager_stopper(tiny_model_dir)
    engine = HFEngine(model, tokenizer, batch_size=8, temperature=1.0)
    # Each trace's token confidences, joined from the measurements that continue one another (an online trace is
    # measured window by window, then the rest of its thinking once it finishes), and every measured token.
    measured: dict[tuple, list[float]] = {}
    tokens_measured = 0
    measure = engine.confidences

    def spying(contexts, starts, top_k):
        nonlocal tokens_measured
        values = measure(contexts, starts, top_k)
        for context, start, new in zip(contexts, starts, values):
            measured[tuple(context)] = measured.pop(tuple(context[:start]), []) + new
            tokens_measured += len(new)
        return values

    engine.confidences = spying
    eval_cfg = EvalConfig(temperature=1.0, samples=6, max_thinking_tokens=24, max_answer_tokens=4)
    budget = budget_config(BudgetMode.deepconf, window=4, top_k=3, keep=0.5, warmup=warmup)
    check_budget(budget, eval_cfg)
    rows = [{"id": str(i), "question": q, "answer": "1"} for i, q in enumerate(EAGER_QUESTIONS)]
    policy = forcing_policy(fmt, eval_cfg, budget, ExtendConfig(name="wait", string="Wait"))
    found = evaluate_rows(fmt, engine, policy, rows, "t", budget, samples=6, seed=3)
    for row in rows:  # a question draws every sample unless its kept traces reached consensus
        traces = [r for r in found if r["id"] == row["id"]]
        assert len(traces) == 6 or _leads(traces, budget.consensus)
    for record in found:
        extras = record["extras"]
        if extras["stopped"]:  # at a window's end, below the question's threshold, before answering
            assert record["thinking_tokens"] % 4 == 0 and not extras["kept"] and record["sample"] >= warmup
            assert record["answer_text"] == "" and extras["threshold"] is not None
            continue
        assert any(len(v) == record["thinking_tokens"] and lowest_group(v, 4) == pytest.approx(extras["confidence"])
                   for v in measured.values())
        if warmup and record["sample"] >= warmup:
            assert extras["kept"] == (extras["confidence"] >= extras["threshold"])
    if not warmup:  # the 3 most confident of each question's 6 traces
        for row in rows:
            traces = sorted((r for r in found if r["id"] == row["id"]), key=lambda r: -r["extras"]["confidence"])
            assert [r["extras"]["kept"] for r in traces] == [True] * 3 + [False] * 3
    else:
        assert any(r["extras"]["stopped"] for r in found), "the fixture model should fall below some threshold"
    assert math.isfinite(vote(found)["thinking_tokens"])
    assert tokens_measured == sum(r["thinking_tokens"] for r in found)  # each thinking token measured once


def test_the_stage_reports_the_vote_beside_majority_voting(tiny_model_dir, tmp_path, monkeypatch: pytest.MonkeyPatch):
    import s1x.evaluate.stage
    from s1x.chat import S1Format
    from s1x.config import ModelConfig
    from s1x.evaluate.results import Method, Result
    from s1x.models import load_model, load_tokenizer

    def load_engine(model_cfg, model_path, eval_cfg):
        tokenizer = load_tokenizer(str(tiny_model_dir))
        engine = HFEngine(load_model(str(tiny_model_dir), "float32"), tokenizer, 4, eval_cfg.temperature)
        return S1Format(tokenizer, model_cfg), engine

    monkeypatch.setattr(s1x.evaluate.stage, "load_engine", load_engine)
    eval_cfg = EvalConfig(limit=3, max_thinking_tokens=8, max_answer_tokens=4, temperature=1.0, samples=4)
    budget = budget_config(BudgetMode.deepconf, window=4, top_k=3, keep=0.5)
    metrics = s1x.evaluate.stage.evaluate(eval_cfg, budget, ExtendConfig(name="wait", string="Wait"),
                                          ModelConfig(name="tiny", path=str(tiny_model_dir)), str(tiny_model_dir), tmp_path)
    results = [Result.from_dict(entry) for entry in metrics["results"]]
    assert [(r.method, r.samples) for r in results] == [(Method.single, 4), (Method.majority, 1), (Method.majority, 2),
                                                        (Method.majority, 4), (Method.vote, 4)]
    voted = results[-1]
    records = [json.loads(line) for line in (tmp_path / voted.records).read_text().splitlines()]
    assert (voted.accuracy, voted.mean_thinking_tokens) == tuple(vote(records).values())
    assert voted.series.label == "embedded vote@4" and voted.n == 3


def test_a_resumed_run_takes_each_traces_confidence_from_the_journal(tiny_model_dir, tmp_path):
    """The confidence is set as a trace finishes, before it is journaled: a rerun puts every trace back with it,
    measures nothing and votes as the first run did."""
    from s1x.evaluate.journal import Journal

    fmt, tokenizer, model, _, _ = make_eager_stopper(tiny_model_dir)
    engine = HFEngine(model, tokenizer, batch_size=8, temperature=1.0)
    eval_cfg = EvalConfig(temperature=1.0, samples=4, max_thinking_tokens=24, max_answer_tokens=4)
    budget = budget_config(BudgetMode.deepconf, window=4, top_k=3, keep=0.5, warmup=2)
    rows = [{"id": str(i), "question": q, "answer": "1"} for i, q in enumerate(EAGER_QUESTIONS)]
    policy = forcing_policy(fmt, eval_cfg, budget, ExtendConfig(name="wait", string="Wait"))
    first = evaluate_rows(fmt, engine, policy, rows, "t", budget, samples=4, seed=3, journal=Journal(tmp_path))
    calls = []
    engine.confidences = lambda *args: calls.append(args)
    again = evaluate_rows(fmt, engine, policy, rows, "t", budget, samples=4, seed=3, journal=Journal(tmp_path))
    assert calls == [] and again == first
