"""A training job preempted on the real SLURM cluster writes a checkpoint on the signal, is requeued, and resumes from it.

The preemption is what submitit's `SlurmJob._interrupt()` sends: SIGTERM (which submitit ignores) then
the preemption signal USR2. The training finishes its step, writes a checkpoint and stops; submitit
then calls the job's `checkpoint`, which resubmits the same stage, and requeues the job with
`scontrol requeue`. The rerun resumes from that checkpoint, not from the last `save_steps` one (there
is none here: save_steps exceeds the run), and the evaluation waits (afterok) through the requeue.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import run_s1x
from tests.test_slurm_cluster import job_fields
from tests.test_sweep_slurm import LAUNCHER, graph_jobs, status, sweeps

pytestmark = pytest.mark.skipif(shutil.which("sbatch") is None, reason="no SLURM cluster here (start one with .ci/slurm-up)")

STEPS = 96  # 24 examples x 4 epochs, one example per step: long enough to preempt in the middle
# submitit takes a signal for a time-out once a job has run min(80 %, limit - 10 min) of its limit: with
# the tests' 10 minutes, from its start. With 30, the signal is a preemption.
LAUNCHER_30_MIN = [*(arg for arg in LAUNCHER if not arg.startswith("hydra.launcher.timeout_min=")),
                   "hydra.launcher.timeout_min=30"]


def cell_args(model_dir: Path, tmp_path: Path) -> list[str]:
    return ["model=tiny", f"model.path={model_dir}", f"store_dir={tmp_path}/store", "data.size=24", "train.epochs=4",
            "train.global_batch_size=1", "train.micro_batch_size=1", "train.save_steps=1000",
            "eval.limit=1", "eval.max_thinking_tokens=4", "eval.max_answer_tokens=2", "eval.engine=hf"]


def wait_for(condition, what: str, timeout: float = 180):
    """Poll until condition() returns something."""
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"no {what} after {timeout}s"
        time.sleep(0.05)
    return found


def preempt(job_id: str) -> None:
    """What SLURM sends a preempted job, as submitit's `SlurmJob._interrupt()` does."""
    for signal in ("SIGTERM", "USR2"):
        subprocess.run(["scancel", job_id, "--signal", signal], check=True, timeout=30)


@pytest.mark.slow
def test_a_preempted_training_checkpoints_on_the_signal_and_resumes_from_it(tiny_model_dir: Path, tmp_path: Path):
    run_s1x(["-m", "data=random", *LAUNCHER_30_MIN, *cell_args(tiny_model_dir, tmp_path)], cwd=tmp_path)
    [sweep] = sweeps(tmp_path)
    [train] = graph_jobs(sweep)["train"]
    job_id = train["job_id"]
    job_log = sweep / ".submitit" / job_id / f"{job_id}_0_log.out"
    try:
        wait_for(lambda: job_log.exists() and re.search(r"train: step ([5-9]|\d\d+)/", job_log.read_text()), "training step 5")
        preempt(job_id)
        done = status(sweep)
    finally:
        left = [n["job_id"] for nodes in graph_jobs(sweep).values() for n in nodes]
        subprocess.run(["scancel", *left], timeout=30)  # whatever is left, if the test failed
    assert done.returncode == 0, done.stdout + done.stderr

    assert job_fields(job_id)["Restarts"] == "1"  # the same SLURM job ran twice
    text = job_log.read_text()
    assert "Caught signal SIGUSR2 on" in text and "this job is preempted" in text
    assert f"Requeued job {job_id} (3 remaining timeouts)" in text  # a preemption spends no time-out
    assert text.count(f"Starting with JobEnvironment(job_id={job_id},") == 2
    step = int(re.search(r"train: checkpoint at step (\d+), then stopping", text).group(1))
    assert re.search(rf"train: resuming from \S+/checkpoint-{step}\b", text)
    assert 5 <= step < STEPS  # the step the signal came at, not a save_steps checkpoint (there is none before 1000)
    cell = json.loads((sweep / "0" / "cell.json").read_text())
    assert cell["status"] == "done" and cell["results"]
    stats = json.loads((Path(cell["stages"]["train"]["path"]) / "train_stats.json").read_text())
    assert stats["resumed_from_step"] == step
    assert stats["steps"] == STEPS and len(stats["losses"]) == STEPS  # the steps before the preemption are kept
