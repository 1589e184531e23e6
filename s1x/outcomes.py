"""A cell's record (cell.json) and outcome: a local cell's is written as it runs; a SLURM sweep's cell is a record of
its stage keys, written when the sweep is planned, and what happened to it is read later from the store and the
stages' jobs (cell_outcome)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from s1x.evaluate.results import METRICS_FILE
from s1x.slurm import ACTIVE, ended
from s1x.store import Store

CELL_FILE = "cell.json"


def add_metrics(cell: dict, results: Path) -> None:
    """The evaluation's typed results (s1x/evaluate/results.py) and curve metrics, into the cell record."""
    metrics = json.loads((results / METRICS_FILE).read_text())
    cell["results"], cell["scaling"] = metrics["results"], metrics.get("scaling", {})
    cell["budget_bounds"] = metrics.get("budget_bounds")  # absent from evaluations stored before it was recorded


def cell_record(overrides: list[str], choices: dict[str, str], keys: dict[str, Optional[str]],
                jobs: dict[str, Optional[str]], computes: dict[str, bool], store_dir: str) -> dict:
    """A planned cell: its stage keys, the job of each stage (None: in the store already), and whether
    this cell's job computes the stage (False: reused from the store or from another cell's job)."""
    return {"overrides": overrides, "choices": choices, "status": "planned", "keys": keys, "jobs": jobs,
            "computes": computes, "store_dir": str(Path(store_dir).resolve()), "stages": {}}


def _stage_outcome(store: Store, stage: str, key: str, job: Optional[str], queue: dict[str, str]) -> tuple[str, str]:
    """(state, error) of one stage: done, failed, running, pending or missing."""
    if store.is_done(stage, key):
        return "done", ""
    record = store.job_record(stage, key) or {}
    job = record.get("job_id") or job
    where = f"{stage} job {job}" + (f" (log {record['log']})" if record.get("log") else "")
    if record.get("state") == "failed":
        return "failed", f"{where} failed:\n{record.get('error', '')}"
    state = queue.get(job or "", "")
    if state and not ended(state):
        return ACTIVE[state.split(" ")[0]], ""
    if state and not state.startswith("COMPLETED"):
        return "failed", f"{where} ended {state}\nSLURM: job {job} ended {state}"
    return "missing", ""


def cell_jobs(record: dict) -> set[str]:
    """The SLURM jobs a planned cell's outcome depends on: its stages' jobs, and any later job of the same keys."""
    store = Store(record["store_dir"])
    later = (store.job_record(stage, key) or {} for stage, key in record["keys"].items() if key)
    return {j for j in record["jobs"].values() if j} | {r["job_id"] for r in later if r.get("job_id")}


def cell_outcome(record: dict, queue: dict[str, str]) -> dict:
    """A planned cell's outcome from the store and its stages' jobs (`queue`: job id -> SLURM state).

    The first stage that failed gives the cell its error; a cell is done when every stage is in the store.
    """
    store, cell = Store(record["store_dir"]), {**record, "stages": {}}
    states = []
    for stage, key in record["keys"].items():
        if key is None:
            continue
        state, error = _stage_outcome(store, stage, key, record["jobs"].get(stage), queue)
        states.append(state)
        if state == "done":
            job = store.job_record(stage, key) or {}
            computes = record["computes"].get(stage, False)
            cell["stages"][stage] = {"key": key, "path": str(store.path(stage, key)), "reused": not computes,
                                     "seconds": job.get("seconds", 0.0) if computes else 0.0}
        elif state == "failed" and "error" not in cell:
            cell["error"], cell["failed_stage"] = error, stage
    cell["status"] = next((s for s in ("failed", "running", "pending", "missing") if s in states), "done")
    if cell["status"] == "done":
        add_metrics(cell, store.path("eval", record["keys"]["eval"]))
    return cell


def stage_dir(cell_dir: Path, stage: str) -> Path:
    """Where a cell's stage output lives: the path its run recorded, or for a cell planned as a SLURM job graph
    its key in the store; FileNotFoundError where the cell has none (train=none, or the stage never ran)."""
    cell = json.loads((Path(cell_dir) / CELL_FILE).read_text())
    if "path" in cell.get("stages", {}).get(stage, {}):
        return Path(cell["stages"][stage]["path"])
    if cell.get("keys", {}).get(stage):
        return Store(cell["store_dir"]).path(stage, cell["keys"][stage])
    raise FileNotFoundError(f"{cell_dir}: its cell.json names no {stage} output (status {cell.get('status')})")
