"""A training job preempted on the real SLURM cluster writes a checkpoint on the signal, is requeued, and resumes from it.

The preemption is what submitit's `SlurmJob._interrupt()` sends: SIGTERM (which submitit ignores) then
the preemption signal USR2. The training finishes its step, writes a checkpoint and stops; submitit
then calls the job's `checkpoint`, which resubmits the same stage, and requeues the job with
`scontrol requeue`. The rerun resumes from that checkpoint, not from the last `save_steps` one (there
is none here: save_steps exceeds the run), and the evaluation waits (afterok) through the requeue.

An evaluation job has no handler of its own: submitit's requeues it, and what survives is the journal of
finished samples it wrote on the way (s1x/evaluate/journal.py), which the requeued run resumes from.
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


EVAL_PROBLEMS, EVAL_SAMPLES = 16, 8
EVAL_TOTAL = EVAL_PROBLEMS * EVAL_SAMPLES


def long_eval_args(model_dir: Path, store: Path) -> list[str]:
    """The base model evaluated at once (no training), long enough to preempt in the middle: on HF each of the
    8 samples of the 16 problems is one forcing call whose finished samples are journaled together, about a
    second apart. Sampled (temperature 1), each call seeded by its own number, so a rerun draws the same."""
    return ["train=none", "model=tiny", f"model.path={model_dir}", f"store_dir={store}", "eval.engine=hf",
            f"eval.limit={EVAL_PROBLEMS}", f"eval.samples={EVAL_SAMPLES}", "eval.temperature=1.0", "budget=none",
            "eval.max_thinking_tokens=256", "eval.max_answer_tokens=8"]


def journal_lines(journal: Path) -> int:
    return len(journal.read_text().splitlines()) if journal.exists() else 0


def eval_records(sweep: Path) -> list[dict]:
    cell = json.loads((sweep / "0" / "cell.json").read_text())
    assert cell["status"] == "done" and cell["results"], cell
    records = Path(cell["stages"]["eval"]["path"]) / "records" / "0.jsonl"
    return [json.loads(line) for line in records.read_text().splitlines()]


@pytest.mark.slow
def test_a_preempted_evaluation_is_requeued_and_resumes_from_its_journal(tiny_model_dir: Path, tmp_path: Path):
    """A preempted evaluation must not start over: the requeued job restores the samples its first run journaled,
    generates only the others, and writes the records an evaluation that was never preempted writes (the same
    evaluation, run beside it in another store)."""
    preempted_dir, uninterrupted_dir = tmp_path / "preempted", tmp_path / "uninterrupted"
    for cwd in (preempted_dir, uninterrupted_dir):
        cwd.mkdir()
        # One thread each, as the jobs have one CPU each: SLURM does not pin them here, and two jobs of two
        # threads each on the node's two cores spin against each other (many times slower).
        run_s1x(["-m", *LAUNCHER_30_MIN, *long_eval_args(tiny_model_dir, cwd / "store")], cwd=cwd,
                env={"OMP_NUM_THREADS": "1"})
    [sweep], [uninterrupted] = sweeps(preempted_dir), sweeps(uninterrupted_dir)
    [evaluation] = graph_jobs(sweep)["eval"]
    job_id = evaluation["job_id"]
    job_log = sweep / ".submitit" / job_id / f"{job_id}_0_log.out"
    progress = preempted_dir / "store" / "eval" / f".{evaluation['key']}.progress"
    journal = progress / "samples.jsonl"
    try:
        journaled = wait_for(lambda: journal_lines(journal), "journaled sample")
        assert journaled < EVAL_TOTAL, "the evaluation finished before it could be preempted: make it longer"
        preempt(job_id)
        done, reference = status(sweep), status(uninterrupted)
    finally:
        left = [n["job_id"] for s in (sweep, uninterrupted) for nodes in graph_jobs(s).values() for n in nodes]
        subprocess.run(["scancel", *left], timeout=30)  # whatever is left, if the test failed
    assert done.returncode == 0, done.stdout + done.stderr
    assert reference.returncode == 0, reference.stdout + reference.stderr

    assert job_fields(job_id)["Restarts"] == "1"  # the same SLURM job ran twice
    text = job_log.read_text()
    assert "Caught signal SIGUSR2 on" in text and "this job is preempted" in text
    assert f"Requeued job {job_id} (3 remaining timeouts)" in text
    assert text.count(f"Starting with JobEnvironment(job_id={job_id},") == 2
    [restored] = [int(n) for n in re.findall(r"eval     resuming: (\d+) finished samples", text)]  # the rerun's only
    assert journaled <= restored < EVAL_TOTAL  # what the first run journaled before the signal, not the whole evaluation
    records = eval_records(sweep)
    assert len(records) == EVAL_TOTAL
    assert len({(r["id"], r["sample"]) for r in records}) == EVAL_TOTAL  # every sample exactly once
    assert not progress.exists()  # the journal goes once the entry is in place
    assert records == eval_records(uninterrupted)
