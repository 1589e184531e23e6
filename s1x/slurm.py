"""What SLURM says about a sweep's jobs, read in one call for all of them.

`squeue -t all` knows queued and running jobs, and ended ones for MinJobAge (300 s by default);
`sacct` (where the cluster keeps accounting) knows older ones. A job neither knows is absent from
the answer: the caller then goes by the store (done) or the job's own record (failed).
"""
from __future__ import annotations

import shutil
import subprocess
from typing import Iterable

# States of a job that has not ended, as the report names them.
ACTIVE = {"PENDING": "pending", "REQUEUED": "pending", "REQUEUE_HOLD": "pending", "REQUEUE_FED": "pending",
          "PREEMPTED": "pending", "CONFIGURING": "running", "RUNNING": "running", "COMPLETING": "running",
          "SUSPENDED": "running", "RESIZING": "running", "SIGNALING": "running", "STAGE_OUT": "running"}


def _run(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def job_states(job_ids: Iterable[str]) -> dict[str, str]:
    """job id -> SLURM state, with the pending reason where there is one: `PENDING (Dependency)`."""
    ids = sorted({str(j) for j in job_ids if j})
    if not ids or shutil.which("squeue") is None:
        return {}
    states = {}
    for line in _run(["squeue", "-h", "-t", "all", "-j", ",".join(ids), "-o", "%i|%T|%r"]).splitlines():
        job, state, reason = (line.split("|") + ["", ""])[:3]
        states[job] = state if reason in ("", "None") else f"{state} ({reason})"
    older = [j for j in ids if j not in states]
    if older and shutil.which("sacct"):
        for line in _run(["sacct", "-n", "-P", "-X", "-j", ",".join(older), "-o", "JobID,State"]).splitlines():
            job, _, state = line.partition("|")
            if job in older and state:
                states[job] = state.split(" ")[0]  # "CANCELLED by 0" -> CANCELLED
    return states


def ended(state: str) -> bool:
    """Whether a state from job_states is final."""
    return state.split(" ")[0] not in ACTIVE
