"""hydra/launcher=slurm's schema: submitit's SLURM options, per-stage sizes, and the planning switches.

The values and their reasons live in conf/hydra/launcher/slurm.yaml; this dataclass only makes a
mistyped key fail at composition (Hydra imports every hydra_plugins module at start-up, which registers it).
"""
# No `from __future__ import annotations`: Hydra imports plugins outside sys.modules, where a dataclass
# with string annotations cannot resolve them.
from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf


@dataclass
class StageConf:
    """One stage's job within a node; null: the launcher's (the node's) value."""
    cpus_per_task: Optional[int] = None
    mem_gb: Optional[int] = None
    gpus_per_node: Optional[int] = None  # eval only: a fixed count instead of the engine's tensor-parallel size
    timeout_min: Optional[int] = None
    hours: float = 0.0  # expected duration, for the plan's GPU-hours estimate only


@dataclass
class PlannedSlurmConf(SlurmQueueConf):
    _target_: str = "hydra_plugins.s1x_launcher.planned_slurm.PlannedSlurmLauncher"
    select: StageConf = field(default_factory=StageConf)
    train: StageConf = field(default_factory=StageConf)
    eval: StageConf = field(default_factory=StageConf)
    report: StageConf = field(default_factory=StageConf)
    dry_run: bool = False  # print the graph, submit nothing
    wait: bool = False  # block until every job ended, then report here and exit non-zero if a cell failed


ConfigStore.instance().store(group="hydra/launcher", name="s1x_slurm_schema", node=PlannedSlurmConf, provider="s1x")
