"""Every experiment and W&B sweep file composes into a valid config, as users would run it."""
from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

from s1x.schemas import register
from s1x.validate import validated
from tests.conftest import CONF_DIR, ROOT

register()
EXPERIMENTS = sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml"))  # a folder beside one holds its cells' settings
SWEEPS = sorted((ROOT / "sweeps").rglob("*.yaml"))


def _compose(overrides: list[str], with_hydra: bool = False):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=with_hydra)


def test_there_are_experiments_and_sweeps():
    assert {"data_ablations", "ignore_scaling", "extrapolation_strings", "scaling_curve"} <= set(EXPERIMENTS)
    assert SWEEPS


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_cell_of_every_experiment_composes(name: str):
    base = _compose([f"+experiment={name}"], with_hydra=True)
    params = dict(base.hydra.sweeper.params or {})
    grid = [[f"{key}={value}" for value in str(values).split(",")] for key, values in params.items()]
    cells = list(itertools.product(*grid)) or [()]
    for cell in cells:
        typed = validated(_compose([f"+experiment={name}", *cell]))
        for override in cell:
            key, value = override.split("=")
            if "." not in key and "/" not in key:
                assert getattr(typed, key) is not None
    assert len(cells) >= 1


def _expand(command: list[str], point: dict[str, object]) -> list[str]:
    args = [f"{key}={value}" for key, value in point.items()]
    out = []
    for part in command:
        if part == "${args_no_hyphens}":
            out += args
        elif part != "${env}":
            out.append(part)
    return out


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_wandb_sweep_commands_expand_to_composable_overrides(path: Path):
    spec = yaml.safe_load(path.read_text())
    assert spec["method"] == "grid" and "${args_no_hyphens}" in spec["command"]
    names = list(spec["parameters"])
    for values in itertools.product(*(spec["parameters"][n]["values"] for n in names)):
        argv = _expand(spec["command"], dict(zip(names, values)))
        assert argv[:3] == ["python", "-m", "s1x"]
        typed = validated(_compose(argv[3:]))
        assert typed.logger.kind.value == "wandb"


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_32b_experiments_shard_training_and_evaluate_with_vllm(name: str):
    """A 32B model cannot be fully fine-tuned in one process: every 32B experiment shards it, and evaluates with vLLM
    over the node's GPUs. The miniature overlay takes each back to one CPU process and the transformers engine."""
    typed = validated(_compose([f"+experiment={name}"]))
    if "32b" in typed.model.name:
        assert typed.distributed.strategy.value in ("fsdp", "deepspeed") and typed.train.gradient_checkpointing
        assert typed.eval.engine.value == "vllm" and typed.eval.tensor_parallel_size == 8
    shrunk = validated(_compose([f"+experiment={name}", "+overlay=miniature"]))
    assert shrunk.model.name == "smollm2-135m-instruct" and shrunk.distributed.strategy.value == "single"
    assert shrunk.eval.engine.value == "hf" and shrunk.eval.benchmarks == ["embedded"]
