"""The evaluate stage's sampling on the tiny model: several samples per question, each its own draw."""
from __future__ import annotations

from pathlib import Path

import pytest

from s1x.chat import S1Format
from s1x.config import BudgetConfig, BudgetMode, EvalConfig, ExtendConfig, ModelConfig
from s1x.evaluate.engines.hf import HFEngine
from s1x.evaluate.stage import budget_bounds, evaluate_rows, forcing_policy
from s1x.evaluate.metrics import majority_voting
from s1x.models import load_model, load_tokenizer


def test_samples_are_separate_draws_and_vote(tiny_model_dir: Path):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    fmt = S1Format(tokenizer, ModelConfig(name="tiny", path=str(tiny_model_dir)))
    engine = HFEngine(load_model(str(tiny_model_dir), "float32"), tokenizer, batch_size=4, temperature=1.0, seed=5)
    eval_cfg = EvalConfig(max_thinking_tokens=12, max_answer_tokens=4, temperature=1.0, samples=3)
    policy = forcing_policy(fmt, eval_cfg, BudgetConfig(mode=BudgetMode.none), ExtendConfig(name="none", string=""))
    rows = [{"id": str(i), "question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(2)]
    records = evaluate_rows(fmt, engine, policy, rows, "t", samples=3)
    assert [(r["id"], r["sample"]) for r in records] == [("0", 0), ("1", 0), ("0", 1), ("1", 1), ("0", 2), ("1", 2)]
    texts = {r["sample"]: r["text"] for r in records if r["id"] == "0"}
    assert len(set(texts.values())) == 3  # each sample draws with its own seed
    assert engine.seed == 5  # and the engine's seed is left as it was
    again = evaluate_rows(fmt, engine, policy, rows, "t", samples=3)
    assert [r["text"] for r in again] == [r["text"] for r in records]  # seeded: the same draws again
    assert set(majority_voting(records)) == {"1", "2", "3"}


@pytest.mark.parametrize("budget,bounds", [
    (BudgetConfig(mode=BudgetMode.max, tokens=64), [None, 64]),
    (BudgetConfig(mode=BudgetMode.token_conditional, tokens=128), [None, 128]),
    (BudgetConfig(mode=BudgetMode.rejection, tokens=256), [None, 256]),
    (BudgetConfig(mode=BudgetMode.min, tokens=32), [32, None]),
    (BudgetConfig(mode=BudgetMode.ignore, times=2), None),
    (BudgetConfig(mode=BudgetMode.step_conditional, steps=4), None),
    (BudgetConfig(mode=BudgetMode.scale, caps=[32, 64]), None),
])
def test_budget_bounds_are_the_thinking_tokens_a_budget_asks_for(budget: BudgetConfig, bounds):
    assert budget_bounds(budget) == bounds
