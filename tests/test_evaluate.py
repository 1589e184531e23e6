"""The evaluate stage on the tiny model: several samples per question, each its own draw, through the engine
protocol; engines are closed when the stage (or selection's difficulty scoring) is done with them."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from s1x.chat import S1Format
from s1x.config import BudgetConfig, BudgetMode, EvalConfig, ExtendConfig, ModelConfig
from s1x.evaluate.modes import budget_config
from s1x.evaluate.engines import Engine
from s1x.evaluate.engines.hf import HFEngine
from s1x.evaluate.generation import evaluate_rows
from s1x.evaluate.modes import MODES
from s1x.evaluate.policy import forcing_policy
from s1x.evaluate.metrics import majority_voting
from s1x.models import load_model, load_tokenizer
from s1x.store import Store


def _hf(tiny_model_dir: Path, temperature: float = 0.0) -> tuple[S1Format, HFEngine]:
    tokenizer = load_tokenizer(str(tiny_model_dir))
    fmt = S1Format(tokenizer, ModelConfig(name="tiny", path=str(tiny_model_dir)))
    return fmt, HFEngine(load_model(str(tiny_model_dir), "float32"), tokenizer, batch_size=4, temperature=temperature)


def test_samples_are_separate_draws_and_vote(tiny_model_dir: Path):
    fmt, engine = _hf(tiny_model_dir, temperature=1.0)
    assert isinstance(engine, Engine)
    eval_cfg = EvalConfig(max_thinking_tokens=12, max_answer_tokens=4, temperature=1.0, samples=3)
    policy = forcing_policy(fmt, eval_cfg, budget_config(BudgetMode.none), ExtendConfig(name="none", string=""))
    rows = [{"id": str(i), "question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(2)]
    records = evaluate_rows(fmt, engine, policy, rows, "t", samples=3, seed=5)
    assert [(r["id"], r["sample"]) for r in records] == [("0", 0), ("1", 0), ("0", 1), ("1", 1), ("0", 2), ("1", 2)]
    texts = {r["sample"]: r["text"] for r in records if r["id"] == "0"}
    assert len(set(texts.values())) == 3  # each sample draws with its own seed
    again = evaluate_rows(fmt, engine, policy, rows, "t", samples=3, seed=5)
    assert [r["text"] for r in again] == [r["text"] for r in records]  # seeded: the same draws again
    # The seed goes in the call: sample k draws with seed + k, so starting at 6 repeats samples 1 and 2 first.
    shifted = evaluate_rows(fmt, engine, policy, rows, "t", samples=2, seed=6)
    assert [r["text"] for r in shifted] == [r["text"] for r in records[2:]]
    assert set(majority_voting(records)) == {"1", "2", "3"}


class _Tracked(HFEngine):
    """An HFEngine that records which engines are alive (opened, not yet closed)."""

    alive: list["_Tracked"] = []
    most_alive = 0

    def __init__(self, *args) -> None:
        super().__init__(*args)
        _Tracked.alive.append(self)
        _Tracked.most_alive = max(_Tracked.most_alive, len(_Tracked.alive))

    def close(self) -> None:
        super().close()
        _Tracked.alive.remove(self)


@pytest.fixture
def tracked(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """load_engine, wherever a stage imported it, hands out tracked engines on the tiny model."""
    import s1x.evaluate.stage
    import s1x.select.difficulty

    _Tracked.alive, _Tracked.most_alive = [], 0
    loaded: list[_Tracked] = []

    def load_engine(model_cfg: ModelConfig, model_path: str, eval_cfg: EvalConfig):
        tokenizer = load_tokenizer(str(tiny_model_dir))
        engine = _Tracked(load_model(str(tiny_model_dir), "float32"), tokenizer, 4, eval_cfg.temperature)
        loaded.append(engine)
        return S1Format(tokenizer, model_cfg), engine

    monkeypatch.setattr(s1x.evaluate.stage, "load_engine", load_engine)
    monkeypatch.setattr(s1x.select.difficulty, "load_engine", load_engine)
    return loaded


def test_the_evaluate_stage_closes_its_engine(tracked: list, tiny_model_dir: Path, tmp_path: Path):
    from s1x.evaluate.stage import evaluate

    model_cfg = ModelConfig(name="tiny", path=str(tiny_model_dir))
    metrics = evaluate(EvalConfig(limit=2, max_thinking_tokens=8, max_answer_tokens=4), budget_config(BudgetMode.max, tokens=4),
                       ExtendConfig(name="wait", string="Wait"), model_cfg, str(tiny_model_dir), tmp_path)
    [result] = metrics["results"]
    assert (result["benchmark"], result["point"], result["method"], result["samples"], result["n"]) == ("embedded", None, "single", 1, 2)
    assert len((tmp_path / result["records"]).read_text().splitlines()) == 2
    assert metrics["provenance"]["forcing"] == "rounds"  # the transformers engine forces in rounds
    assert len(tracked) == 1 and _Tracked.alive == [] and tracked[0].model is None


def test_difficulty_scoring_holds_one_engine_at_a_time_and_closes_it(tracked: list, tiny_model_dir: Path, tmp_path: Path):
    from s1x.select.difficulty import add_base_correctness

    rows = [{"id": str(i), "question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(2)]
    model_cfg = ModelConfig(name="tiny", path=str(tiny_model_dir))
    eval_cfg = EvalConfig(max_thinking_tokens=6, max_answer_tokens=3)
    add_base_correctness(rows, [str(tiny_model_dir), f"{tiny_model_dir}/."], model_cfg, eval_cfg, Store(tmp_path), str(tmp_path))
    assert len(tracked) == 2 and _Tracked.most_alive == 1 and _Tracked.alive == []
    assert all(row["base_correct"] in (0.0, 1.0) for row in rows)
    stored = list((tmp_path / "difficulty").glob("*/records.jsonl"))
    assert len(stored) == 2 and all(len(p.read_text().splitlines()) == 2 for p in stored)
    assert {json.loads(line)["id"] for line in stored[0].read_text().splitlines()} == {"0", "1"}


@pytest.mark.parametrize("budget,bounds", [
    (budget_config(BudgetMode.max, tokens=64), [None, 64]),
    (budget_config(BudgetMode.token_conditional, tokens=128), [None, 128]),
    (budget_config(BudgetMode.rejection, tokens=256), [None, 256]),
    (budget_config(BudgetMode.min, tokens=32), [32, None]),
    (budget_config(BudgetMode.ignore, times=2), None),
    (budget_config(BudgetMode.step_conditional, steps=4), None),
    (budget_config(BudgetMode.scale, caps=[32, 64]), None),
])
def test_budget_bounds_are_the_thinking_tokens_a_budget_asks_for(budget: BudgetConfig, bounds):
    assert MODES[budget.mode].bounds(budget) == bounds
