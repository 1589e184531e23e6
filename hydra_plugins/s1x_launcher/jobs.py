"""What runs inside a sweep's SLURM jobs: one stage of the graph, or the report once every stage job ended.

Both are pickled by submitit with the typed configs they need, resolved by the process that planned
the sweep (its directory included), so a job composes and resolves nothing again. Each stage job
records its state in the store beside its key (`.KEY.job.json`: running, done, failed with the
traceback), which is how the report tells a failed stage from one that never ran. A job signalled
for preemption or its time limit is requeued by submitit through `checkpoint` and runs the same stage
again; the store, and training its checkpoints, hold what the killed attempt finished.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from s1x.config import ConfigError

log = logging.getLogger("s1x")


def _log_to_stdout() -> None:
    """s1x's log lines into the job's log (submitit's <job>_0_log.out), in the format of the app's own runs."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


class Requeueable:
    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """On the preemption or time-limit signal: resubmit the same job (submitit then requeues it)."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


class StageJob(Requeueable):
    """Compute one stage key from the config of a cell that needs it."""

    def __init__(self, stage: str, key: str, cfg: Any) -> None:
        self.stage, self.key, self.cfg = stage, key, cfg

    def __call__(self) -> dict:
        if int(os.environ.get("SLURM_PROCID", "0")) > 0:
            return {}  # another node of a multi-node training: task 0 runs the stage, whose srun step spans all nodes
        from s1x.pipeline import run_stage
        from s1x.store import Store

        _log_to_stdout()
        store, start = Store(self.cfg.store_dir), time.perf_counter()
        store.update_job_record(self.stage, self.key, job_id=os.environ.get("SLURM_JOB_ID"), state="running",
                                host=os.uname().nodename, restarts=int(os.environ.get("SLURM_RESTART_COUNT", "0")))
        try:
            info = run_stage(self.cfg, self.stage, self.key)
        except Exception as failure:
            # Bad input is one line (the report and s1x.status show it whole); a traceback is for s1x's own bugs.
            error = f"ConfigError: {failure}" if isinstance(failure, ConfigError) else traceback.format_exc()
            store.update_job_record(self.stage, self.key, state="failed", error=error)
            log.error("%s %s failed:\n%s", self.stage, self.key, error)  # in the log the record points to
            raise
        store.update_job_record(self.stage, self.key, state="done", seconds=round(time.perf_counter() - start, 3))
        return info


class ReportJob(Requeueable):
    """The sweep's last job: settle every cell's outcome into its cell.json, log the cells' stages to W&B
    where they asked for it, write the report, and fail (a non-zero exit) when a cell did not finish."""

    def __init__(self, sweep_dir: str, configs: dict[str, Any]) -> None:
        self.sweep_dir, self.configs = sweep_dir, configs  # cell directory name -> its typed config

    def __call__(self) -> str:
        from s1x.outcomes import CELL_FILE
        from s1x.report import write_report
        from s1x.report.cells import collect_cells
        from s1x.tracking import log_cell

        _log_to_stdout()
        sweep = Path(self.sweep_dir)
        cells = collect_cells(sweep)
        for cell in cells:
            cell_dir = sweep / cell["dir"]
            (cell_dir / CELL_FILE).write_text(json.dumps({k: v for k, v in cell.items() if k != "dir"}, indent=2))
            if cell["dir"] in self.configs and cell["stages"]:
                log_cell(self.configs[cell["dir"]], cell, cell_dir, sweep.name)
        path = write_report(sweep)
        log.info("report   %s\n%s", path, path.read_text())
        unfinished = [f"{c['dir']}: {c['status']}" for c in cells if c["status"] != "done"]
        if unfinished:
            raise RuntimeError(f"{len(unfinished)} cell(s) failed or did not finish ({', '.join(unfinished)}); see {path}")
        return str(path)
