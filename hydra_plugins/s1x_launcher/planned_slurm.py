"""hydra/launcher=slurm: plan a sweep against the store before anything reaches SLURM.

- Every cell's config is composed and validated first: one bad value fails the sweep before
  any job is submitted.
- A cell whose evaluation is already in the store is not submitted; it is recorded in-process
  (every stage reused), so rerunning a finished sweep submits nothing.
- Cells that share a trained model are chained: the first trains, the others are submitted
  with `--dependency=afterany:<its job>` and find the model in the store, instead of holding
  an allocation while they wait on the store's lock.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NamedTuple, Optional, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides, run_job
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
from omegaconf import OmegaConf, open_dict

log = logging.getLogger("s1x")


class PlannedCell(NamedTuple):
    index: int
    overrides: list[str]
    train_key: Optional[str]
    done: bool


class PlannedSlurmLauncher(SlurmLauncher):
    # s1x is imported inside the methods: Hydra imports every plugin module at start-up.

    def plan(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[PlannedCell]:
        """Compose and validate every cell (raises ConfigError naming the key), then look each up in the store."""
        from s1x.config import to_config
        from s1x.pipeline import planned_keys
        from s1x.store import Store

        cells = []
        for offset, overrides in enumerate(job_overrides):
            sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(sweep_config):
                del sweep_config["hydra"]
            cfg = to_config(sweep_config)
            keys = planned_keys(cfg)
            cells.append(PlannedCell(initial_job_idx + offset, list(overrides), keys["train"],
                                     Store(cfg.store_dir).is_done("eval", keys["eval"])))
        return cells

    def _executor(self) -> Any:
        import submitit

        executor = submitit.AutoExecutor(folder=self.params["submitit_folder"],
                                         slurm_max_num_timeout=self.params["max_num_timeout"])
        generic = set(OmegaConf.structured(BaseQueueConf).keys())
        skip = {"submitit_folder", "max_num_timeout"}
        executor.update_parameters(**{k if k in generic else f"slurm_{k}": v for k, v in self.params.items() if k not in skip})
        return executor

    def _record_locally(self, cell: PlannedCell) -> JobReturn:
        sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, cell.overrides)
        with open_dict(sweep_config.hydra.job) as job:
            job.id = f"reused-{cell.index}"
            job.num = cell.index
        return run_job(hydra_context=self.hydra_context, task_function=self.task_function, config=sweep_config,
                       job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        cells = self.plan(job_overrides, initial_job_idx)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        pending = [c for c in cells if not c.done]
        log.info("plan: %d cells, %d already in the store, %d to submit", len(cells), len(cells) - len(pending), len(pending))
        executor = self._executor() if pending else None
        trainer_of: dict[str, str] = {}
        jobs: dict[int, Any] = {}
        for cell in pending:
            first = cell.train_key is None or cell.train_key not in trainer_of
            dependency = {} if first else {"dependency": f"afterany:{trainer_of[cell.train_key]}"}
            executor.update_parameters(slurm_additional_parameters={**self.params.get("additional_parameters", {}), **dependency})
            job = executor.submit(self, cell.overrides, "hydra.sweep.dir", cell.index, f"job_id_for_{cell.index}",
                                  Singleton.get_state())
            if first and cell.train_key is not None:
                trainer_of[cell.train_key] = job.job_id
            log.info("\t#%d: job %s%s  %s", cell.index, job.job_id, f" after {dependency['dependency']}" if dependency else "",
                     " ".join(filter_overrides(cell.overrides)))
            jobs[cell.index] = job
        returns = {c.index: self._record_locally(c) for c in cells if c.done}
        returns.update({index: job.results()[0] for index, job in jobs.items()})
        return [returns[c.index] for c in cells]
