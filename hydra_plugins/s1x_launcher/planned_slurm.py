"""hydra/launcher=slurm: plan a sweep against the store before anything reaches SLURM.

- Every cell's config is composed and validated first: one bad value fails the sweep before
  any job is submitted.
- A cell whose evaluation is already in the store is not submitted; it is recorded in-process
  (every stage reused), so rerunning a finished sweep submits nothing.
- Cells that share a trained model are chained: the first trains, the others are submitted
  with `--dependency=afterany:<its job>` and find the model in the store, instead of holding
  an allocation while they wait on the store's lock.
- Each cell is composed once: Hydra's sweeper composes every cell to validate the batch before
  launching it, and the plan takes those compositions instead of repeating them (composition
  is most of the planning time of a large sweep: ~75 ms of CPU a cell).
- A job preempted, or signalled before its time limit, is requeued by submitit: the inherited
  `checkpoint` resubmits the same cell, whose stages find the store (and training its last
  checkpoint) where the killed attempt left them. Dependent cells wait through the requeue.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Optional, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides, run_job
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger("s1x")


class PlannedCell(NamedTuple):
    index: int
    overrides: list[str]
    train_key: Optional[str]
    done: bool


class PhaseTimer:
    """Seconds per planning phase, summed over the cells: where a large sweep's planning time goes."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start

    def __str__(self) -> str:
        return ", ".join(f"{phase} {seconds:.2f} s" for phase, seconds in self.seconds.items())


class KeptCompositions:
    """Hydra's config loader, keeping each composed cell config until the launcher takes it.

    Pickled into the jobs without what it keeps.
    """

    def __init__(self, loader: Any) -> None:
        self.loader, self.kept, self.seconds = loader, {}, 0.0

    def __getattr__(self, name: str) -> Any:
        if name == "loader":  # not set yet while unpickling
            raise AttributeError(name)
        return getattr(self.loader, name)

    def __getstate__(self) -> dict:
        return {"loader": self.loader, "kept": {}, "seconds": 0.0}

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        start = time.perf_counter()
        config = self.loader.load_sweep_config(master_config, sweep_overrides)
        self.seconds += time.perf_counter() - start
        self.kept[tuple(sweep_overrides)] = config
        return config

    def take(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        """The config composed for these overrides (by the sweeper's validation, else now), handed out once."""
        key = tuple(sweep_overrides)
        if key not in self.kept:
            self.load_sweep_config(master_config, sweep_overrides)
        return self.kept.pop(key)


class PlannedSlurmLauncher(SlurmLauncher):
    # s1x is imported inside the methods: Hydra imports every plugin module at start-up.

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        """Share the sweeper's compositions: it holds the same HydraContext and validates through its loader."""
        if not isinstance(hydra_context.config_loader, KeptCompositions):
            hydra_context.config_loader = KeptCompositions(hydra_context.config_loader)
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def plan(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[PlannedCell]:
        """Compose and validate every cell (raises ConfigError naming the key), then look each up in the store."""
        from s1x.validate import validated
        from s1x.pipeline import planned_keys
        from s1x.store import Store

        cells, compositions, timer = [], self.hydra_context.config_loader, PhaseTimer()
        for offset, overrides in enumerate(job_overrides):
            sweep_config = compositions.take(self.config, list(overrides))
            with open_dict(sweep_config):
                del sweep_config["hydra"]
            with timer("validate"):
                cfg = validated(sweep_config)
            with timer("store lookups"):
                keys = planned_keys(cfg)
                done = Store(cfg.store_dir).is_done("eval", keys["eval"])
            cells.append(PlannedCell(initial_job_idx + offset, list(overrides), keys["train"], done))
        log.info("plan: %d cells: compose %.2f s, %s", len(cells), compositions.seconds, timer)
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
        sweep_config = self.hydra_context.config_loader.take(self.config, cell.overrides)
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
