"""The report as the last stage of a Hydra multirun (conf/config.yaml's hydra.callbacks)."""
from __future__ import annotations

import logging
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from s1x.report import write_report
from s1x.report.cells import collect_cells


class ReportAtSweepEnd(Callback):
    """The report over the sweep once every cell has run.

    Failed cells do not stop a sweep; once the report is written, they (and cells that never
    finished) make it exit non-zero (SystemExit: Hydra turns ordinary exceptions from callbacks
    into warnings).
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: object) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        path = write_report(sweep_dir)
        logging.getLogger("s1x").info("report   %s\n%s", path, path.read_text())
        unfinished = [f"{c['dir']}: {c['status']}" for c in collect_cells(sweep_dir) if c["status"] != "done"]
        if unfinished:
            raise SystemExit(f"{len(unfinished)} cell(s) failed or did not finish ({', '.join(unfinished)}); "
                             f"see {path} and their logs")
