"""The real single-node SLURM cluster (`.ci/slurm-up`) takes batch jobs, dependencies, requeues and submitit.

There is no accounting database on that cluster (`sacct` fails), so job state is read with
`scontrol show job`. The whole module is skipped where `sbatch` is not on PATH.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("sbatch") is None,
    reason="no SLURM here (sbatch not on PATH); run .ci/slurm-up as root to start the single-node cluster",
)

ROOT = Path(__file__).resolve().parents[1]
PARTITION = "debug"
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
            "BOOT_FAIL", "DEADLINE"}


def sbatch(*args: str, cwd: Path) -> str:
    out = subprocess.run(["sbatch", "--parsable", f"--partition={PARTITION}", *args], cwd=cwd,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, f"sbatch {args} failed: {out.stderr}"
    return out.stdout.strip().split(";")[0]


def job_fields(job_id: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, f"scontrol show job {job_id}: {out.stderr}"
    return dict(re.findall(r"(\w+)=(\S*)", out.stdout))


def wait_job(job_id: str, timeout: float = 60.0) -> dict[str, str]:
    """Poll until the job reaches a terminal state; return its scontrol fields."""
    deadline = time.monotonic() + timeout
    while True:
        fields = job_fields(job_id)
        if fields.get("JobState") in TERMINAL:
            return fields
        if time.monotonic() > deadline:
            subprocess.run(["scancel", job_id], timeout=30)
            pytest.fail(f"job {job_id} not finished after {timeout}s: {fields}")
        time.sleep(0.5)


def test_batch_job_writes_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S1X_SLURM_PROBE", "exported")  # sbatch's default --export=ALL carries it
    out = tmp_path / "out.txt"
    job = sbatch("--job-name=s1x-probe", f"--output={tmp_path}/%j.log",
                 f"--wrap=echo \"job $SLURM_JOB_ID on $(hostname -s) in $PWD: $S1X_SLURM_PROBE\" > {out}",
                 cwd=tmp_path)
    fields = wait_job(job)
    assert fields["JobState"] == "COMPLETED", fields
    assert fields["ExitCode"] == "0:0", fields
    assert out.read_text().strip() == f"job {job} on {os.uname().nodename.split('.')[0]} in {tmp_path}: exported"


def test_dependency_afterok_runs_after_first(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    first = sbatch(f"--output={tmp_path}/%j.log",
                   f"--wrap=date +%s.%N > {a}; sleep 4; date +%s.%N >> {a}", cwd=tmp_path)
    second = sbatch(f"--dependency=afterok:{first}", f"--output={tmp_path}/%j.log",
                    f"--wrap=date +%s.%N > {b}", cwd=tmp_path)
    # While the first runs, the second waits on it.
    fields = job_fields(second)
    assert fields["JobState"] == "PENDING" and fields["Reason"] == "Dependency", fields
    assert wait_job(first)["JobState"] == "COMPLETED"
    assert wait_job(second)["JobState"] == "COMPLETED"
    a_start, a_end = map(float, a.read_text().split())
    b_start = float(b.read_text())
    assert a_end - a_start >= 4
    assert b_start >= a_end, (a_start, a_end, b_start)


def test_dependency_afterok_never_runs_after_failure(tmp_path: Path) -> None:
    b = tmp_path / "b.txt"
    first = sbatch(f"--output={tmp_path}/%j.log", "--wrap=exit 3", cwd=tmp_path)
    second = sbatch(f"--dependency=afterok:{first}", "--kill-on-invalid-dep=yes", f"--output={tmp_path}/%j.log",
                    f"--wrap=touch {b}", cwd=tmp_path)
    fields = wait_job(first)
    assert fields["JobState"] == "FAILED" and fields["ExitCode"] == "3:0", fields
    assert wait_job(second)["JobState"] == "CANCELLED"
    assert not b.exists()


def test_afterany_runs_after_a_job_cancelled_because_its_input_failed(tmp_path: Path) -> None:
    """A sweep's report job: it waits afterany on every stage job, some of them cancelled by a failed input."""
    report = tmp_path / "report.txt"
    failing = sbatch(f"--output={tmp_path}/%j.log", "--wrap=exit 3", cwd=tmp_path)
    dependent = sbatch(f"--dependency=afterok:{failing}", "--kill-on-invalid-dep=yes", f"--output={tmp_path}/%j.log",
                       "--wrap=true", cwd=tmp_path)
    last = sbatch(f"--dependency=afterany:{failing}:{dependent}", f"--output={tmp_path}/%j.log",
                  f"--wrap=touch {report}", cwd=tmp_path)
    assert wait_job(last)["JobState"] == "COMPLETED" and report.exists()
    assert wait_job(dependent)["JobState"] == "CANCELLED"


def test_requeue_runs_job_again(tmp_path: Path) -> None:
    log = tmp_path / "runs.txt"
    script = tmp_path / "requeue.sh"
    script.write_text(
        "#!/bin/bash\n"
        f"echo \"$SLURM_JOB_ID ${{SLURM_RESTART_COUNT:-0}}\" >> {log}\n"
        # The first run requeues itself (as a preempted or killed job would be) and never finishes.
        "if [ \"${SLURM_RESTART_COUNT:-0}\" = 0 ]; then scontrol requeue $SLURM_JOB_ID; sleep 60; fi\n"
    )
    job = sbatch("--requeue", f"--output={tmp_path}/%j.log", str(script), cwd=tmp_path)
    fields = wait_job(job, timeout=90)
    assert fields["JobState"] == "COMPLETED", fields
    assert fields["Restarts"] == "1", fields
    assert log.read_text().split("\n")[:2] == [f"{job} 0", f"{job} 1"]


def slurm_probe(x: int) -> tuple[int, str, str]:
    """Runs inside a SLURM job (module level, so the job's Python imports it by name)."""
    return x * 2, os.environ["SLURM_JOB_ID"], os.environ.get("S1X_SLURM_PROBE", "")


def test_submitit_runs_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import submitit

    # The job imports this module as tests.test_slurm_cluster, from the project root, with this venv's
    # Python (submitit runs sys.executable; the environment is exported to the job).
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("S1X_SLURM_PROBE", "submitit")
    executor = submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="slurm")
    executor.update_parameters(slurm_partition=PARTITION, timeout_min=5, cpus_per_task=1, mem_gb=1,
                               name="s1x-submitit")
    job = executor.submit(slurm_probe, 21)
    fields = wait_job(job.job_id)
    assert fields["JobState"] == "COMPLETED", (fields, job.stderr())
    assert job.result() == (42, job.job_id, "submitit")
