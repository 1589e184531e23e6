"""A sweep cell preempted on the real SLURM cluster is requeued and resumes training from its checkpoint.

The preemption is what submitit's `SlurmJob._interrupt()` sends: SIGTERM (which submitit ignores)
then the preemption signal USR2. submitit then calls the launcher's `checkpoint`, which resubmits
the same cell, and requeues the job with `scontrol requeue`; the rerun finds the training
checkpoints the first attempt left beside the store.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_slurm_cluster import job_fields
from tests.test_sweep_slurm import LAUNCHER

pytestmark = pytest.mark.skipif(shutil.which("sbatch") is None, reason="no SLURM cluster here (start one with .ci/slurm-up)")

STEPS = 16  # 8 examples x 2 epochs, one example per step, a checkpoint every 2: preempted after the first
# submitit takes a signal for a time-out once a job has run min(80 %, limit - 10 min) of its limit: with
# the tests' 10 minutes, from its start. With 30, the signal is a preemption.
LAUNCHER_30_MIN = [*(arg for arg in LAUNCHER if not arg.startswith("hydra.launcher.timeout_min=")),
                   "hydra.launcher.timeout_min=30"]


def cell_args(model_dir: Path, tmp_path: Path) -> list[str]:
    return ["model=tiny", f"model.path={model_dir}", f"store_dir={tmp_path}/store", "data.size=8", "train.epochs=2",
            "train.global_batch_size=1", "train.micro_batch_size=1", "train.save_steps=2",
            "eval.limit=1", "eval.max_thinking_tokens=4", "eval.max_answer_tokens=2"]


def wait_for(condition, what: str, sweep: subprocess.Popen, log: Path, timeout: float = 120):
    """Poll until condition() returns something; fail at once if the sweep ends first."""
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert sweep.poll() is None, f"the sweep ended before {what}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no {what} after {timeout}s"
        time.sleep(0.05)
    return found


def preempt(job_id: str) -> None:
    """What SLURM sends a preempted job, as submitit's `SlurmJob._interrupt()` does."""
    for signal in ("SIGTERM", "USR2"):
        subprocess.run(["scancel", job_id, "--signal", signal], check=True, timeout=30)


def test_a_preempted_cell_is_requeued_and_resumes_training(tiny_model_dir: Path, tmp_path: Path):
    sweep_dir, store, log = tmp_path / "sweep", tmp_path / "store", tmp_path / "sweep.log"
    args = ["-m", "data=random", *LAUNCHER_30_MIN, *cell_args(tiny_model_dir, tmp_path), f"hydra.sweep.dir={sweep_dir}"]
    with open(log, "w") as out:
        sweep = subprocess.Popen([sys.executable, "-m", "s1x", *args], cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                 stdout=out, stderr=subprocess.STDOUT)
    job_id = None
    try:
        job_id = wait_for(lambda: next((d.name for d in (sweep_dir / ".submitit").glob("*") if d.name.isdigit()), None),
                          "submitted job", sweep, log)
        wait_for(lambda: list(store.glob("train/.*.checkpoints/single-x1/checkpoint-*/trainer_state.json")),
                 "training checkpoint", sweep, log)
        preempt(job_id)
        assert sweep.wait(timeout=300) == 0, log.read_text()[-3000:]
    finally:
        if sweep.poll() is None:
            sweep.kill()
            if job_id:
                subprocess.run(["scancel", job_id], timeout=30)

    assert job_fields(job_id)["Restarts"] == "1"  # the same SLURM job ran twice
    submitit_log = (sweep_dir / ".submitit" / job_id / f"{job_id}_0_log.out").read_text()
    assert "Caught signal SIGUSR2 on" in submitit_log and "this job is preempted" in submitit_log
    assert f"Requeued job {job_id} (3 remaining timeouts)" in submitit_log  # a preemption spends no time-out
    assert submitit_log.count(f"Starting with JobEnvironment(job_id={job_id},") == 2
    step = int(re.search(r"resuming from \S+/checkpoint-(\d+)", (sweep_dir / "0" / "__main__.log").read_text()).group(1))
    cell = json.loads((sweep_dir / "0" / "cell.json").read_text())
    assert cell["status"] == "done" and cell["metrics"]
    stats = json.loads((Path(cell["stages"]["train"]["path"]) / "train_stats.json").read_text())
    assert stats["resumed_from_step"] == step and 2 <= step < STEPS
    assert stats["steps"] == STEPS and len(stats["losses"]) == STEPS  # the steps before the preemption are kept
