"""Entry point: `python -m s1x [overrides]` runs one cell; `-m` fans a grid of cells out."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from s1x.config import ConfigError
from s1x.lifetime import end_with_the_parent
from s1x.schemas import register
from s1x.plan import say_what_is_detectable
from s1x.validate import check_selection, validated
from s1x.outcomes import CELL_FILE
from s1x.pipeline import record_failure, run_cell
from s1x.report import write_report
from s1x.report.cells import STOPPED
from s1x.store import out_of_space

log = logging.getLogger("s1x")
if __name__ == "__mp_main__":  # imported by a process s1x spawned (vLLM's engine): it ends with s1x
    end_with_the_parent()
register()
# Output directories carry the process id, so runs started in the same second never share one. Cached
# like Hydra's `now`: a sweep's jobs that compose their cell again (submitit_local) get the cache of the
# process that planned it, not their own process id and a directory of their own.
OmegaConf.register_new_resolver("s1x.pid", lambda: os.getpid(), replace=True, use_cache=True)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    if int(os.environ.get("SLURM_PROCID", "0")) > 0:
        return  # another node of a multi-node cell: the cell runs on task 0, whose training step spans all nodes
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode is RunMode.MULTIRUN
    overrides, choices = list(hydra_cfg.overrides.task), dict(hydra_cfg.runtime.choices)
    try:
        typed = validated(cfg)
        if not multirun:  # a sweep's plan did these for every cell
            check_selection(typed)
            say_what_is_detectable([typed])
        (run_dir / "resolved_config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        group = Path(hydra_cfg.sweep.dir).name if multirun else run_dir.name
        run_cell(typed, run_dir, overrides, choices, group)
    except KeyboardInterrupt:
        (run_dir / CELL_FILE).unlink(missing_ok=True)  # unfinished: missing in the report
        if multirun:
            raise  # the sweeper reports the cells done so far (hydra_plugins/s1x_sweeper/)
        log.error(STOPPED)
        raise SystemExit(130) from None
    except Exception as error:
        if not multirun and isinstance(error, ConfigError):  # the user's input (wherever found): one line
            raise SystemExit(f"s1x: {error}") from None
        if not multirun and out_of_space(error):  # not s1x's bug: one line, no traceback
            raise SystemExit(f"s1x: out of disk space under store_dir={cfg.store_dir} ({error}); the stages that "
                             "finished are kept: free space and run the same command again") from None
        if not multirun and type(error).__name__ == "EngineDeadError":
            raise SystemExit("s1x: vLLM's engine process died during the evaluation (killed, or out of memory: see "
                             "its log above); the finished samples are journaled: the same command again resumes "
                             "them") from None
        if not multirun:
            raise
        # One failing cell must not stop a sweep: its error goes to its log and the report.
        record_failure(run_dir, overrides, choices)
        log.error("cell %s failed: %s: %s", run_dir.name, type(error).__name__, error)
        return
    if not multirun:
        path = write_report(run_dir)
        log.info("report   %s\n%s", path, path.read_text())


if __name__ == "__main__":
    main()
