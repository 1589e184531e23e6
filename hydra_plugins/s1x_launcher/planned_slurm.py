"""hydra/launcher=slurm: a sweep as a graph of stage jobs, planned against the store, submitted at once.

- Plan: every cell is composed and validated first (one bad value fails the sweep before any job is
  submitted) and its stage keys computed; the keys become one node per unique select, train and
  eval key (s1x/graph.py), and a node already in the store, or queued by an earlier submission of
  the same keys, is no new job. The plan prints, per stage, the jobs, what they wait for, their
  resources and the GPU-hours they hold against one job per cell; `hydra.launcher.dry_run=true`
  stops there.
- Submit: one job per node, sized for its stage (conf/hydra/launcher/slurm.yaml), waiting `afterok`
  for the job that makes its input (with `--kill-on-invalid-dep`, so a job whose input failed is
  cancelled, not left pending for ever), then one CPU job that writes the report once every job ended.
- Return at once: each cell is a record of its stage keys and their jobs (cell.json, and the graph in
  graph.json); the report job, `python -m s1x.status SWEEP_DIR` and `python -m s1x.report SWEEP_DIR`
  read the outcome from the store and the jobs. `hydra.launcher.wait=true` blocks instead, and the
  report is written here, failing the command when a cell failed.
- The sweep directory is resolved once, here; jobs receive paths, not interpolations (a job that
  resolved `${s1x.pid:}` itself wrote its cell into a directory of its own).
- Each cell is composed once: the sweeper composes every cell to validate the batch, and the plan
  takes those compositions (compositions.py).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from hydra_plugins.s1x_launcher.compositions import KeptCompositions

log = logging.getLogger("s1x")
# Passed to sbatch as they are; the resource keys come from each stage's Resources instead.
SLURM_KEYS = ("partition", "account", "qos", "comment", "constraint", "exclude", "gres", "cpus_per_gpu",
              "gpus_per_task", "mem_per_gpu", "mem_per_cpu", "signal_delay_s", "setup")


class Planned(NamedTuple):
    cell: Any  # s1x.graph.Cell
    config: DictConfig  # the composed cell config, without its hydra node
    choices: dict[str, str]


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


class Submitter:
    """sbatch through submitit: each job with its stage's resources, its dependencies and the launcher's SLURM options."""

    def __init__(self, sweep_dir: Path, params: dict[str, Any]) -> None:
        self.folder, self.params, self.executors = sweep_dir / ".submitit" / "%j", params, {}

    def submit(self, job: Any, stage: str, resources: Any, after: list[str], kind: str = "afterok") -> str:
        import submitit

        key = (stage, resources)
        if key not in self.executors:
            executor = submitit.AutoExecutor(folder=self.folder, slurm_max_num_timeout=self.params["max_num_timeout"])
            gpus = {"gpus_per_node": resources.gpus_per_node} if resources.gpus_per_node else {}
            executor.update_parameters(
                name=f"{self.params['name']}-{stage}", nodes=resources.nodes, tasks_per_node=1,
                cpus_per_task=resources.cpus_per_task, mem_gb=resources.mem_gb, timeout_min=resources.timeout_min,
                stderr_to_stdout=self.params.get("stderr_to_stdout", False), **gpus,
                **{f"slurm_{k}": self.params[k] for k in SLURM_KEYS if self.params.get(k) is not None})
            self.executors[key] = executor
        extra = dict(self.params.get("additional_parameters") or {})
        if after:
            extra["dependency"] = f"{kind}:{':'.join(after)}"
            if kind == "afterok":
                extra["kill-on-invalid-dep"] = "yes"  # an input failed: cancel, do not wait for ever
        self.executors[key].update_parameters(slurm_additional_parameters=extra)
        return self.executors[key].submit(job).job_id


class PlannedSlurmLauncher(Launcher):
    # s1x is imported inside the methods: Hydra imports every plugin module at start-up.

    def __init__(self, **params: Any) -> None:
        self.params = {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v for k, v in params.items()}
        self.config: Any = None
        self.hydra_context: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        """Share the sweeper's compositions: it holds the same HydraContext and validates through its loader."""
        if not isinstance(hydra_context.config_loader, KeptCompositions):
            hydra_context.config_loader = KeptCompositions(hydra_context.config_loader)
        self.config, self.hydra_context = config, hydra_context

    def plan(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int, timer: PhaseTimer) -> list[Planned]:
        """Compose and validate every cell (raises ConfigError naming the key), then compute its stage keys."""
        from s1x.graph import Cell
        from s1x.keys import planned_keys
        from s1x.validate import validated

        planned, compositions = [], self.hydra_context.config_loader
        for offset, overrides in enumerate(job_overrides):
            sweep_config = compositions.take(self.config, list(overrides))
            choices = dict(sweep_config.hydra.runtime.choices)
            with open_dict(sweep_config):
                del sweep_config["hydra"]
            with timer("validate"):
                cfg = validated(sweep_config)
                # Jobs start in the submission directory, but absolute paths do not depend on it (nor do keys).
                cfg = dataclasses.replace(cfg, store_dir=str(Path(cfg.store_dir).absolute()),
                                          cache_dir=str(Path(cfg.cache_dir).absolute()))
            with timer("keys"):
                keys = planned_keys(cfg)
            planned.append(Planned(Cell(initial_job_idx + offset, list(overrides), cfg, keys), sweep_config, choices))
        timer.seconds = {"compose": compositions.seconds, **timer.seconds}
        return planned

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from s1x.graph import build_graph, render_plan

        sweep_dir, timer = self._resolve_sweep_dir(), PhaseTimer()
        planned = self.plan(job_overrides, initial_job_idx, timer)
        cells = [p.cell for p in planned]
        with timer("store lookups"):
            stored, queued = self._stored_and_queued(cells)
        log.info("plan: %d cells: %s", len(cells), timer)
        log.info("plan: %d of %d cells composed as a copy of an earlier cell with other values",
                 self.hydra_context.config_loader.derived, len(cells))
        nodes = build_graph(cells, self.params, stored, queued)
        for line in render_plan(cells, nodes, self.params, report_job=not self.params["wait"]):
            log.info(line)
        if self.params["dry_run"]:
            self._report_elsewhere()
            if sweep_dir.is_dir() and [p.name for p in sweep_dir.iterdir()] == ["multirun.yaml"]:
                shutil.rmtree(sweep_dir)  # all the sweeper wrote: a dry run leaves no sweep behind
            log.info("dry run (hydra.launcher.dry_run=true): nothing submitted, nothing written")
            return []
        sweep_dir.mkdir(parents=True, exist_ok=True)
        report = self._submit(sweep_dir, planned, nodes)
        jobs = [n.job_id for n in nodes.values() if n.job_id]
        if not jobs:
            log.info("plan: every stage is in the store: nothing to submit")
            return []  # the report callback reports now, from the store
        if self.params["wait"]:
            self._wait(jobs)
            return []  # every job ended: the report callback reports
        self._report_elsewhere()
        log.info("submitted %d jobs (%d already queued); %s. Follow with: python -m s1x.status %s",
                 sum(n.state == "submit" for n in nodes.values()), sum(n.state == "queued" for n in nodes.values()),
                 f"job {report} writes {sweep_dir}/report.md when they end" if report else "no new job: no report job",
                 sweep_dir)
        return []

    def _submit(self, sweep_dir: Path, planned: list[Planned], nodes: dict) -> Any:
        """Submit the graph's new nodes in order (inputs first), write the cells and the graph, then the report
        job (unless the launcher waits and reports itself); return the report job's id."""
        from s1x.graph import REPORT, dependencies, stage_resources
        from hydra_plugins.s1x_launcher.jobs import ReportJob, StageJob

        submitter = Submitter(sweep_dir, self.params)
        for node in (n for n in nodes.values() if n.state == "submit"):
            after = dependencies(node, nodes)
            node.job_id = submitter.submit(StageJob(node.stage, node.key, node.cfg), node.stage, node.resources, after)
            self._record_job(node, sweep_dir)
            log.info("\t%-6s %s: job %s%s  (%d cell%s)", node.stage, node.key, node.job_id,
                     f" after afterok:{':'.join(after)}" if after else "", len(node.cells), "s" * (len(node.cells) > 1))
        self._write_cells(sweep_dir, planned, nodes)
        report = None
        if any(n.state == "submit" for n in nodes.values()) and not self.params["wait"]:
            jobs = [n.job_id for n in nodes.values() if n.job_id]
            configs = {str(p.cell.index): p.cell.cfg for p in planned}
            report = submitter.submit(ReportJob(str(sweep_dir), configs), REPORT, stage_resources(REPORT, None, self.params),
                                      jobs, kind="afterany")
            log.info("\t%-6s: job %s after afterany on all %d jobs", REPORT, report, len(jobs))
        self._write_graph(sweep_dir, nodes, report)
        return report

    def _resolve_sweep_dir(self) -> Path:
        """The sweep directory, decided once by this process and written back as a plain path."""
        sweep_dir = Path(str(self.config.hydra.sweep.dir)).absolute()
        with read_write(self.config.hydra), open_dict(self.config.hydra):
            self.config.hydra.sweep.dir = str(sweep_dir)
        return sweep_dir

    def _stored_and_queued(self, cells: list) -> tuple[set, dict]:
        """Stage keys already in the store, and those another submission's job has not finished yet (-> job id)."""
        from s1x.slurm import ended, job_states
        from s1x.store import Store

        stored, recorded, seen = set(), {}, set()
        for cell in cells:
            store = Store(cell.cfg.store_dir)
            for stage, key in cell.keys.items():
                if key is None or (stage, key) in seen:
                    continue
                seen.add((stage, key))
                if store.is_done(stage, key):
                    stored.add((stage, key))
                elif (record := store.job_record(stage, key)) and record.get("job_id"):
                    recorded[stage, key] = record["job_id"]
        states = job_states(recorded.values()) if recorded else {}
        return stored, {node: job for node, job in recorded.items() if job in states and not ended(states[job])}

    def _record_job(self, node: Any, sweep_dir: Path) -> None:
        from s1x.store import Store

        log_file = sweep_dir / ".submitit" / node.job_id / f"{node.job_id}_0_log.out"
        # No state: if the job started first, its own record of this job id is kept and merged into.
        Store(node.cfg.store_dir).update_job_record(node.stage, node.key, job_id=node.job_id, sweep=str(sweep_dir),
                                                    log=str(log_file))

    def _write_cells(self, sweep_dir: Path, planned: list[Planned], nodes: dict) -> None:
        """Each cell's directory: its composed config and overrides, as Hydra writes them, and its record."""
        from s1x.outcomes import CELL_FILE, cell_record

        for p in planned:
            cell_dir = sweep_dir / str(p.cell.index)
            (cell_dir / ".hydra").mkdir(parents=True, exist_ok=True)
            OmegaConf.save(p.config, cell_dir / ".hydra" / "config.yaml")
            OmegaConf.save(OmegaConf.create(p.cell.overrides), cell_dir / ".hydra" / "overrides.yaml")
            (cell_dir / "resolved_config.yaml").write_text(OmegaConf.to_yaml(p.config, resolve=True))
            stage_nodes = {stage: nodes.get((stage, key)) for stage, key in p.cell.keys.items()}
            jobs = {stage: node.job_id if node else None for stage, node in stage_nodes.items()}
            computes = {stage: bool(node and node.state == "submit" and node.cells[0] == p.cell.index)
                        for stage, node in stage_nodes.items()}
            record = cell_record(p.cell.overrides, p.choices, p.cell.keys, jobs, computes, p.cell.cfg.store_dir)
            (cell_dir / CELL_FILE).write_text(json.dumps(record, indent=2))

    def _write_graph(self, sweep_dir: Path, nodes: dict, report: Any) -> None:
        """graph.json: every node (stage, key, job, state, input, resources, cells) and the report job."""
        from s1x.graph import GRAPH_FILE

        graph = [{"stage": n.stage, "key": n.key, "job_id": n.job_id, "state": n.state, "needs": n.needs,
                  "resources": dataclasses.asdict(n.resources), "cells": n.cells} for n in nodes.values()]
        (sweep_dir / GRAPH_FILE).write_text(json.dumps({"nodes": graph, "report_job": report}, indent=2))

    def _wait(self, jobs: list[str]) -> None:
        from s1x.slurm import ended, job_states

        log.info("waiting for %d jobs (hydra.launcher.wait=true)", len(jobs))
        while any(not ended(state) for state in job_states(jobs).values()):
            time.sleep(5)

    def _report_elsewhere(self) -> None:
        """The report callback (conf/config.yaml) would report now, on cells still queued, and fail the
        sweep for them: here the report job (or `python -m s1x.status`) reports once the jobs ended."""
        callbacks = self.hydra_context.callbacks
        callbacks.callbacks = [c for c in callbacks.callbacks if type(c).__name__ != "ReportAtSweepEnd"]
