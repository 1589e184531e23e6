"""A sweep is checked as a whole before any cell runs: inert axes and selections the pool cannot give."""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from s1x.config import ConfigError
from s1x.schemas import register
from s1x.validate import check_sweep, inert_axes, validated
from tests.conftest import CONF_DIR, ROOT, run_s1x

register()


def _cells(*grid: list[str], common: tuple[str, ...] = ()) -> list[tuple[list[str], object]]:
    """Every combination of the grid's overrides, composed and validated as the sweeper does."""
    import itertools

    cells = []
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for combination in itertools.product(*grid):
            overrides = [*combination, *common]
            cells.append((overrides, validated(compose("config", overrides=overrides))))
    return cells


def test_extend_is_inert_under_budget_none_and_decides_under_the_curve(tmp_path: Path):
    store = (f"store_dir={tmp_path}",)
    inert = inert_axes(_cells(["extend=wait", "extend=hmm"], common=("budget=none", *store)))
    assert list(inert) == ["extend"] and "budget=none" in inert["extend"] and "budget=min" in inert["extend"]
    assert inert_axes(_cells(["extend=wait", "extend=hmm"], common=("budget=curve", *store))) == {}
    assert inert_axes(_cells(["extend=wait", "extend=hmm"], common=("budget=min", "budget.tokens=32", *store))) == {}


@pytest.mark.parametrize("grid,common,key", [
    (["data.seed=0", "data.seed=1"], ("data=full",), "data.seed"),
    (["train.learning_rate=1e-4", "train.learning_rate=1e-5"], ("train=none",), "train.learning_rate"),
    (["distributed=single", "distributed=deepspeed"], (), "distributed"),
])
def test_keys_that_decide_no_stage_are_named(grid: list[str], common: tuple[str, ...], key: str):
    assert list(inert_axes(_cells(grid, common=common))) == [key]


def test_a_mixed_grid_names_the_axis_where_it_is_inert():
    """extend decides under budget=ignore, not under budget=none: two of the four cells would be one evaluation."""
    inert = inert_axes(_cells(["budget=none", "budget=ignore"], ["extend=wait", "extend=hmm"]))
    assert list(inert) == ["extend"] and "budget=none" in inert["extend"]


def test_check_sweep_stops_unless_allowed_and_checks_the_pool(tmp_path: Path):
    cells = _cells(["extend=wait", "extend=hmm"], common=("budget=none", f"store_dir={tmp_path}"))
    with pytest.raises(ConfigError, match=r"(?s)sweep axis extend cannot change any result.*allow_inert_axes=true"):
        check_sweep(cells, allow_inert=False)
    check_sweep(cells, allow_inert=True)
    too_many = _cells(["data=random", "data=diverse"], common=("data.size=5000", f"store_dir={tmp_path}"))
    with pytest.raises(ConfigError, match=r"cell data=random .*data.size=5000 exceeds the \d+ rows of pool embedded"):
        check_sweep(too_many, allow_inert=False)


def test_cli_stops_an_inert_sweep_before_any_cell(tmp_path: Path):
    sweep = tmp_path / "sweep"
    result = run_s1x(["-m", "extend=wait,hmm", "budget=none", f"store_dir={tmp_path}/store", f"hydra.sweep.dir={sweep}"],
                     cwd=ROOT, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "sweep axis extend cannot change any result" in output and "budget=none" in output
    assert not list(sweep.glob("*/cell.json")) and not (tmp_path / "store").exists()
