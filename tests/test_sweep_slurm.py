"""Sweeps on the real single-node SLURM cluster that .ci/slurm-up starts (no fake sbatch)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from s1x.report.cells import collect_cells
from tests.conftest import ROOT, run_s1x
from tests.wandb_log import offline_runs

pytestmark = pytest.mark.skipif(shutil.which("sbatch") is None, reason="no SLURM cluster here (start one with .ci/slurm-up)")

# Small cells, sized for the test cluster (one CPU each, no GPU).
LAUNCHER = ["hydra/launcher=slurm", "hydra.launcher.partition=debug", "hydra.launcher.gpus_per_node=0",
            "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=4", "hydra.launcher.timeout_min=10"]


def _tiny(tiny_model_dir: Path, tmp_path: Path) -> list[str]:
    return ["model=tiny", f"model.path={tiny_model_dir}", f"store_dir={tmp_path}/store", "data.size=8",
            "train.epochs=1", "train.global_batch_size=4", "train.micro_batch_size=4", "eval.limit=4",
            "eval.max_thinking_tokens=24", "eval.max_answer_tokens=6", "budget=min", "budget.tokens=12"]


def test_grid_runs_as_slurm_jobs_training_once_per_selection(tiny_model_dir: Path, tmp_path: Path):
    sweep = tmp_path / "sweep"
    args = ["-m", "data=random,longest", "extend=wait,hmm", *LAUNCHER, *_tiny(tiny_model_dir, tmp_path), "logger=wandb"]
    result = run_s1x([*args, f"hydra.sweep.dir={sweep}"], cwd=ROOT, env={"WANDB_MODE": "offline"})
    output = result.stdout + result.stderr
    jobs = [d for d in (sweep / ".submitit").iterdir() if d.is_dir() and list(d.glob("*_result.pkl"))]
    assert len(jobs) == 4  # each cell ran as its own SLURM job
    assert output.count("after afterany:") == 2  # the cells sharing a model wait for the job that trains it
    assert len(list((tmp_path / "store" / "train").glob("[0-9a-f]*"))) == 2
    cells = collect_cells(sweep)
    assert len(cells) == 4 and {c["status"] for c in cells} == {"done"}
    assert sorted(c["stages"]["train"]["reused"] for c in cells) == [False, False, True, True]
    rows = [line for line in (sweep / "report.md").read_text().splitlines() if line.startswith("| ") and "| done |" in line]
    assert len(rows) == 4
    runs = offline_runs(sweep)
    assert len(runs) == 13 and {r["group"] for r in runs} == {sweep.name}  # 4 cells x 3 stages, and the report

    again = run_s1x([*args, f"hydra.sweep.dir={tmp_path}/again"], cwd=ROOT, env={"WANDB_MODE": "offline"})
    assert "plan: 4 cells, 4 already in the store, 0 to submit" in again.stdout + again.stderr
    assert not (tmp_path / "again" / ".submitit").exists()
    assert [c["metrics"] for c in collect_cells(tmp_path / "again")] == [c["metrics"] for c in cells]


def test_a_bad_value_fails_the_sweep_before_any_job_is_submitted(tiny_model_dir: Path, tmp_path: Path):
    sweep = tmp_path / "sweep"
    result = run_s1x(["-m", "data.size=8,-1", *LAUNCHER, *_tiny(tiny_model_dir, tmp_path)[:3], f"hydra.sweep.dir={sweep}"],
                     cwd=ROOT, check=False)
    assert result.returncode != 0 and "data.size must be positive, got -1" in result.stderr
    assert not (sweep / ".submitit").exists()


def test_a_failing_cell_does_not_stop_the_others(tiny_model_dir: Path, tmp_path: Path):
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    from s1x.embedded import generate_pool

    good.write_text("".join(json.dumps(r) + "\n" for r in generate_pool(40, 0)))
    bad.write_text("".join(json.dumps({"id": r["id"], "question": r["question"], "answer": r["answer"]}) + "\n"
                           for r in generate_pool(40, 0)))  # no trace column
    sweep = tmp_path / "sweep"
    result = run_s1x(["-m", "pool=local", f"pool.sources=[{{path:{good}}}],[{{path:{bad}}}]", "train=none", *LAUNCHER,
                      *_tiny(tiny_model_dir, tmp_path), f"hydra.sweep.dir={sweep}"], cwd=ROOT, check=False)
    assert result.returncode != 0 and "1 cell(s) failed" in result.stderr + result.stdout
    cells = {c["dir"]: c for c in collect_cells(sweep)}
    assert cells["0"]["status"] == "done" and cells["1"]["status"] == "failed"
    assert "has no column 'trace'" in cells["1"]["error"]
    assert "has no column 'trace'" in (sweep / "1" / "__main__.log").read_text()
    report = (sweep / "report.md").read_text()
    assert "| failed: s1x.config.ConfigError: pool local: bad.jsonl has no column 'trace'" in report.replace(str(bad.parent) + "/", "")
