"""A sweep's stage-job graph as functions: deduplication, dependencies, resources, GPU-hours, cell outcomes.

No SLURM here (tests/test_sweep_slurm.py submits real graphs): cells are composed with Hydra as the
launcher composes them, and the store is a temporary directory.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import OmegaConf

from hydra_plugins.s1x_launcher.compositions import KeptCompositions
from s1x.schemas import register
from s1x.graph import (Cell, Resources, build_graph, dependencies, graph_gpu_hours, per_cell_gpu_hours, render_plan,
                       stage_resources)
from s1x.keys import planned_keys
from s1x.outcomes import cell_outcome, cell_record
from s1x.store import Store, rename_unless_done, stage_key
from s1x.validate import validated
from tests.conftest import CONF_DIR

register()
GRID = [["data=random", "data=longest"], ["extend=wait", "extend=hmm"], ["budget.tokens=8", "budget.tokens=12"]]


def _compose(overrides: list[str], hydra: bool = False):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=hydra)


def _cells(grid: list[list[str]], common: list[str] = ("budget=min",)) -> list[Cell]:
    cells = []
    for index, overrides in enumerate(itertools.product(*grid)):
        cfg = validated(_compose([*common, *overrides]))
        cells.append(Cell(index, list(overrides), cfg, planned_keys(cfg)))
    return cells


@pytest.fixture(scope="module")
def launcher() -> dict:
    """The launcher's settings as the plan reads them: conf/hydra/launcher/slurm.yaml composed."""
    settings = OmegaConf.to_container(_compose(["hydra/launcher=slurm"], hydra=True).hydra.launcher)
    return {k: v for k, v in settings.items() if k not in ("submitit_folder", "name")}  # paths of a run


@pytest.fixture(scope="module")
def grid() -> list[Cell]:
    return _cells(GRID)


def test_one_node_per_unique_stage_key_and_evaluations_wait_for_their_training(grid: list[Cell], launcher: dict):
    nodes = build_graph(grid, launcher)
    by_stage = {stage: [n for n in nodes.values() if n.stage == stage] for stage in ("select", "train", "eval")}
    assert [len(by_stage[s]) for s in ("select", "train", "eval")] == [2, 2, 8]
    assert sorted(len(n.cells) for n in by_stage["train"]) == [4, 4]  # each model serves 2 extends x 2 budgets
    for node in by_stage["eval"]:
        cell = grid[node.cells[0]]
        assert node.needs == ("train", cell.keys["train"])
    for i, node in enumerate(nodes.values()):  # submission order: inputs first
        node.job_id = str(100 + i)
    train_job = {n.key: n.job_id for n in by_stage["train"]}
    assert all(dependencies(n, nodes) == [train_job[n.needs[1]]] for n in by_stage["eval"])
    assert all(dependencies(n, nodes) == [] for n in by_stage["select"])


def test_stored_and_queued_stages_are_not_submitted_and_not_waited_for(grid: list[Cell], launcher: dict):
    trained = {c.keys["train"] for c in grid}
    first_model = sorted(trained)[0]
    stored = {("select", c.keys["select"]) for c in grid} | {("train", first_model)}
    queued = {("train", k): "777" for k in trained - {first_model}}
    nodes = build_graph(grid, launcher, stored, queued)
    assert sum(n.state == "submit" for n in nodes.values()) == 8  # only the evaluations
    for node in (n for n in nodes.values() if n.stage == "eval"):
        assert dependencies(node, nodes) == ([] if node.needs[1] == first_model else ["777"])
    lines = render_plan(grid, nodes, launcher)
    assert lines[0].startswith("graph: 8 cells -> 8 stage jobs + 1 report job (0 select, 0 train, 8 eval); "
                               "3 stages already in the store, 1 queued")


def test_train_none_evaluates_the_base_model_without_waiting(launcher: dict):
    cells = _cells([["data=random", "data=longest"]], common=["train=none", "budget=min", "budget.tokens=8"])
    nodes = build_graph(cells, launcher)
    evals = [n for n in nodes.values() if n.stage == "eval"]
    assert len(evals) == 1 and evals[0].needs is None and evals[0].cells == [0, 1]  # the selection decides nothing here
    assert not [n for n in nodes.values() if n.stage == "train"]


def test_each_stage_is_sized_for_itself_within_the_node(launcher: dict):
    cfg = validated(_compose(["budget=min", "budget.tokens=8"]))
    assert stage_resources("select", cfg, launcher) == Resources(1, 0, 16, 64, 120)
    assert stage_resources("train", cfg, launcher) == Resources(1, 1, 8, 112, 240)  # distributed=single: one GPU
    assert stage_resources("eval", cfg, launcher) == Resources(1, 1, 8, 112, 240)
    assert stage_resources("report", None, launcher) == Resources(1, 0, 1, 4, 30)
    fsdp = validated(_compose(["distributed=fsdp", "eval.tensor_parallel_size=4"]))
    two_nodes = {**launcher, "nodes": 2}
    assert stage_resources("train", fsdp, two_nodes) == Resources(2, 8, 64, 900, 240)  # the paper's 2 x 8 H100
    assert stage_resources("eval", fsdp, two_nodes) == Resources(1, 4, 32, 450, 240)
    assert stage_resources("eval", fsdp, {**launcher, "eval": {**launcher["eval"], "gpus_per_node": 2}}).gpus == 2
    judged = validated(_compose(["data=diverse", "data.domain_classifier=model"]))
    assert stage_resources("select", judged, launcher) == Resources(1, 1, 8, 112, 120)  # it runs the model
    small = {**launcher, "gpus_per_node": 0, "cpus_per_task": 2, "mem_gb": 8, "timeout_min": 30}  # the test cluster
    assert stage_resources("select", cfg, small) == Resources(1, 0, 2, 8, 120)
    assert stage_resources("train", cfg, small) == Resources(1, 0, 2, 8, 30)


def test_gpu_hours_against_one_job_per_cell(grid: list[Cell], launcher: dict):
    nodes = build_graph(grid, launcher)
    hours = {s: launcher[s]["hours"] for s in ("select", "train", "eval")}
    # Graph: 2 trainings on 1 GPU, 8 evaluations on 1 GPU. Per cell: 8 GPUs through every cell's evaluation,
    # and through selection and training in the first cell of each.
    assert graph_gpu_hours(nodes.values()) == pytest.approx({"select": 0, "train": 2 * hours["train"], "eval": 8 * hours["eval"]})
    assert per_cell_gpu_hours(grid, nodes, launcher) == pytest.approx(
        {"select": 8 * 2 * hours["select"], "train": 8 * 2 * hours["train"], "eval": 8 * 8 * hours["eval"]})
    assert render_plan(grid, nodes, launcher)[-1].endswith("10.0 as a graph, 84.0 as one job per cell holding 1 x 8 GPUs: 0.12x")
    finished = build_graph(grid, launcher, stored={n for n in nodes})
    assert sum(graph_gpu_hours(finished.values()).values()) == sum(per_cell_gpu_hours(grid, finished, launcher).values()) == 0


def test_value_only_cells_are_composed_as_copies_equal_to_full_compositions():
    """The planner's shortcut (compositions.py) gives exactly what Hydra composes, hydra node included."""
    register()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", ["hydra/launcher=slurm", "hydra.launcher.partition=debug"],
                                           RunMode.MULTIRUN)
        kept = KeptCompositions(loader)
        cells = [["budget=min", *o] for o in itertools.product(*GRID)] + [["budget=min", "budget.tokens=8", "++eval.limit=3"]]
        for overrides in cells:
            ours, hydras = kept.load_sweep_config(master, overrides), loader.load_sweep_config(master, overrides)
            assert OmegaConf.to_container(ours) == OmegaConf.to_container(hydras), overrides
    assert kept.derived == 4  # 4 group choices x 2 values; the `++` override is composed in full


def test_losing_the_final_rename_counts_as_reuse(tmp_path: Path):
    store = Store(tmp_path)
    final = store.path("select", stage_key("select", {"x": 1}))

    def racing_writer(out: Path) -> None:
        (out / "a.txt").write_text("mine")
        final.mkdir(parents=True)  # another host's writer, without our lock, finishes first
        (final / "a.txt").write_text("theirs")

    path, reused = store.get_or_compute("select", {"x": 1}, racing_writer)
    assert (path, reused) == (final, True) and (path / "a.txt").read_text() == "theirs"
    assert not list(path.parent.glob(".*.tmp-*"))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    (tmp / "b").write_text("b")
    assert rename_unless_done(tmp, final) is False and not tmp.exists()  # ENOTEMPTY, not FileExistsError


def _record(store: Store, keys: dict, jobs: dict) -> dict:
    return cell_record(["data=random"], {}, keys, jobs, {s: True for s in keys}, str(store.root))


def test_a_planned_cell_reads_its_outcome_from_the_store_and_its_jobs(tmp_path: Path):
    store = Store(tmp_path)
    keys, jobs = {"select": "s1", "train": "t1", "eval": "e1"}, {"select": "1", "train": "2", "eval": "3"}
    assert cell_outcome(_record(store, keys, jobs), {"1": "RUNNING", "2": "PENDING (Dependency)", "3": "PENDING"})["status"] == "running"
    assert cell_outcome(_record(store, keys, jobs), {})["status"] == "missing"  # no job SLURM knows, nothing stored
    store.path("select", "s1").mkdir(parents=True)
    store.update_job_record("train", "t1", job_id="2", state="failed", log="/x/2_0_log.out",
                            error="Traceback (most recent call last):\nValueError: train.block_size too small")
    failed = cell_outcome(_record(store, keys, jobs), {"2": "FAILED", "3": "CANCELLED (DependencyNeverSatisfied)"})
    assert failed["status"] == "failed" and failed["failed_stage"] == "train"
    assert failed["error"].splitlines()[-1] == "ValueError: train.block_size too small" and "/x/2_0_log.out" in failed["error"]
    assert set(failed["stages"]) == {"select"}
    killed = cell_outcome(_record(store, {**keys, "train": "t2"}, jobs), {"2": "TIMEOUT"})
    assert killed["status"] == "failed" and killed["error"].splitlines()[-1] == "SLURM: job 2 ended TIMEOUT"
    for stage, key in (("train", "t1"), ("eval", "e1")):
        store.path(stage, key).mkdir(parents=True, exist_ok=True)
    (store.path("eval", "e1") / "metrics.json").write_text(json.dumps({"results": [{"benchmark": "embedded", "accuracy": 0.5}]}))
    store.update_job_record("eval", "e1", job_id="3", state="done", seconds=4.5)
    done = cell_outcome(_record(store, keys, jobs), {})
    assert done["status"] == "done" and done["results"] == [{"benchmark": "embedded", "accuracy": 0.5}]
    assert done["stages"]["eval"] == {"key": "e1", "path": str(store.path("eval", "e1")), "reused": False, "seconds": 4.5}
