"""How training is spread over processes: the launch command, Trainer options, SLURM ranks.

distributed=single trains in the pipeline's own process. deepspeed and fsdp start one process
per GPU, each running `python -m s1x.train JOB` (DeepSpeed also on a CPU, over gloo; accelerate
runs FSDP on GPUs only); the Trainer's integrations do the sharding. Outside SLURM torchrun
starts them on this node. Inside a SLURM job an srun step starts them on every node of the job,
and each rank maps its SLURM variables to the ones torch.distributed reads.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Collection, Mapping, Optional

import torch

from s1x.config import DistributedConfig, DistributedStrategy


def processes_per_node(cfg: DistributedConfig) -> int:
    return cfg.processes_per_node or max(torch.cuda.device_count(), 1)


def launch_command(cfg: DistributedConfig, job_file: Path, env: Mapping[str, str] = os.environ) -> list[str]:
    """One training process per GPU, each running the job file: inside a SLURM job, an srun step
    over every node of the job (the paper's 2 x 8 H100 is hydra.launcher.nodes=2); elsewhere,
    torchrun on this node.

    The step overlaps the cell's own step, which holds the allocation while it waits for training.
    """
    per_node = processes_per_node(cfg)
    if "SLURM_JOB_ID" in env:
        # Explicit counts: srun would otherwise take the cell step's own (SLURM_NTASKS, SLURM_CPUS_PER_TASK).
        nodes = int(env["SLURM_JOB_NUM_NODES"])
        cpus = max(1, int(env.get("SLURM_CPUS_ON_NODE", per_node)) // per_node)
        return ["srun", "--overlap", "--kill-on-bad-exit=1", f"--nodes={nodes}", f"--ntasks={nodes * per_node}",
                f"--ntasks-per-node={per_node}", f"--cpus-per-task={cpus}",
                sys.executable, "-m", "s1x.train", str(job_file)]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={per_node}",
            "-m", "s1x.train", str(job_file)]


def trainer_options(cfg: DistributedConfig) -> dict[str, Any]:
    """TrainingArguments for the strategy: a DeepSpeed config file, or FSDP's wrapping."""
    if cfg.strategy is DistributedStrategy.deepspeed:
        return {"deepspeed": str(cfg.deepspeed_config_file())}
    if cfg.strategy is DistributedStrategy.fsdp:
        return {"fsdp": True}  # FSDP2, full shard, one unit per decoder layer (the model's _no_split_modules)
    return {}


def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags as Linux lists them (/proc/cpuinfo); none elsewhere."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return frozenset()
    return frozenset(next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), []))


def uses_bf16(cfg: DistributedConfig, gpu_bf16: Optional[bool], flags: Collection[str]) -> bool:
    """Whether training computes in bf16 under autocast (fp32 master weights and AdamW state): distributed.bf16
    where set; else on a GPU (gpu_bf16: whether it has bf16; None: no GPU) where it has bf16, and on a CPU with
    AMX tiles (amx_bf16) in one process. There the embedded default trains 1.7x faster than in fp32, its loss
    curve within 0.05 of fp32's; without AMX (avx512_bf16 alone) bf16 runs at 0.7x fp32's speed
    (benchmarks/cpu_train_precision.py). DeepSpeed's bf16 would keep bf16 weights: another recipe, untried on CPUs."""
    if cfg.bf16 is not None:
        return cfg.bf16
    if gpu_bf16 is not None:
        return gpu_bf16
    return cfg.strategy is DistributedStrategy.single and "amx_bf16" in flags


def start_deepspeed_comm(cfg: DistributedConfig) -> None:
    """Bring up DeepSpeed's process group before the model loads, so ZeRO-3 can shard it while loading
    (accelerate does this itself on GPUs, not on a CPU)."""
    if cfg.strategy is DistributedStrategy.deepspeed:
        import deepspeed

        deepspeed.init_distributed()


def expand_nodelist(nodelist: str) -> list[str]:
    """SLURM's compressed host list (`gpu[003-004,010],login1`) as host names, in order."""
    hosts = []
    for prefix, ranges, suffix in re.findall(r"([^,\[]+)(?:\[([^\]]+)\])?([^,\[]*)", nodelist):
        if not ranges:
            hosts.append(prefix + suffix)
            continue
        for part in ranges.split(","):
            first, _, last = part.partition("-")
            hosts += [f"{prefix}{n:0{len(first)}d}{suffix}" for n in range(int(first), int(last or first) + 1)]
    return hosts


def torch_env_from_slurm(env: Mapping[str, str]) -> dict[str, str]:
    """torch.distributed's variables for one task of a SLURM step (the ones submitit's JobEnvironment reads).

    The step's own variables come first: an srun step may span fewer nodes than its job. The
    port is derived from the job id, so every rank agrees on it without talking.
    """
    nodelist = env.get("SLURM_STEP_NODELIST") or env["SLURM_JOB_NODELIST"]
    nodes = int(env.get("SLURM_STEP_NUM_NODES") or env.get("SLURM_NNODES") or env["SLURM_JOB_NUM_NODES"])
    tasks = int(env.get("SLURM_STEP_NUM_TASKS") or env["SLURM_NTASKS"])
    return {
        "RANK": env["SLURM_PROCID"],
        "LOCAL_RANK": env["SLURM_LOCALID"],
        "WORLD_SIZE": str(tasks),
        "LOCAL_WORLD_SIZE": str(tasks // nodes),
        "MASTER_ADDR": expand_nodelist(nodelist)[0],
        "MASTER_PORT": env.get("MASTER_PORT") or str(20000 + int(env["SLURM_JOB_ID"]) % 20000),
    }
