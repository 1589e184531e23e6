"""Sharded training for real: DeepSpeed ZeRO-2/3 in 2 processes on the CPU (gloo) train like one
process; FSDP, which accelerate runs on GPUs only, refuses a CPU; SLURM's variables map to
torch.distributed's, and srun-started ranks train too."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from s1x.config import DistributedConfig, DistributedStrategy, TrainMethod
from s1x.train.distributed import expand_nodelist, torch_env_from_slurm
from tests.conftest import ROOT
from tests.test_train import run_train, train_cfg

# One example per process and micro step: 2 processes x 2 accumulation steps = the global batch of 4.
CFG = train_cfg(micro_batch_size=1)


@pytest.fixture(scope="module")
def one_process(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("single") / "out"
    run_train(tiny_model_dir, out, CFG)
    return out


def assert_same_training(out: Path, reference: Path) -> None:
    stats, expected = (json.loads((p / "train_stats.json").read_text()) for p in (out, reference))
    assert stats["processes"] == 2 and expected["processes"] == 1
    assert stats["steps"] == expected["steps"] == 2 and stats["tokens"] == expected["tokens"]
    for key in ("parameters", "trainable_parameters"):
        assert stats[key] == expected[key], key
    torch.testing.assert_close(torch.tensor(stats["losses"]), torch.tensor(expected["losses"]), atol=1e-5, rtol=0)
    weights, reference_weights = load_file(out / "model.safetensors"), load_file(reference / "model.safetensors")
    assert weights.keys() == reference_weights.keys()
    for key in weights:
        torch.testing.assert_close(weights[key], reference_weights[key], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("strategy, deepspeed_config", [
    (DistributedStrategy.deepspeed, "zero2.json"),
    (DistributedStrategy.deepspeed, "zero3.json"),
])
def test_two_sharded_processes_train_like_one(strategy, deepspeed_config, tiny_model_dir: Path, tmp_path: Path,
                                              one_process: Path):
    dist = DistributedConfig(strategy=strategy, processes_per_node=2, deepspeed_config=deepspeed_config)
    run_train(tiny_model_dir, tmp_path / "out", CFG, dist)
    assert_same_training(tmp_path / "out", one_process)
    assert not (tmp_path / ".out.checkpoints").exists()


def test_fsdp_without_gpus_stops_instead_of_training_unsharded(tiny_model_dir: Path, tmp_path: Path,
                                                             capfd: pytest.CaptureFixture):
    """On a CPU accelerate drops FSDP and trains with plain DDP; s1x stops and says so instead."""
    dist = DistributedConfig(strategy=DistributedStrategy.fsdp, processes_per_node=2)
    with pytest.raises(RuntimeError, match="training processes failed"):
        run_train(tiny_model_dir, tmp_path / "out", CFG, dist)
    assert "distributed=fsdp: accelerate shards with FSDP on GPUs only" in capfd.readouterr().err
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_lora_under_zero3_merges_like_one_process(tiny_model_dir: Path, tmp_path: Path):
    cfg = train_cfg(micro_batch_size=1, method=TrainMethod.lora, learning_rate=1e-2, lora_rank=4, lora_alpha=8,
                    lora_dropout=0.0)
    run_train(tiny_model_dir, tmp_path / "single", cfg)
    dist = DistributedConfig(strategy=DistributedStrategy.deepspeed, processes_per_node=2, deepspeed_config="zero3.json")
    run_train(tiny_model_dir, tmp_path / "zero3", cfg, dist)
    assert_same_training(tmp_path / "zero3", tmp_path / "single")
    base, merged = load_file(tiny_model_dir / "model.safetensors"), load_file(tmp_path / "zero3" / "model.safetensors")
    assert max((merged[k] - base[k]).abs().max() for k in base) > 1e-4  # the merged adapters moved the weights


# A real task's SLURM variables: task 1 of `srun -N1 -n2` on the single-node CI cluster (.ci/slurm-up).
SLURM_TASK = {
    "SLURM_JOBID": "39", "SLURM_JOB_ID": "39", "SLURM_JOB_NAME": "bash", "SLURM_JOB_NODELIST": "vm",
    "SLURM_JOB_NUM_NODES": "1", "SLURM_LOCALID": "1", "SLURM_NNODES": "1", "SLURM_NODEID": "0",
    "SLURM_NODELIST": "vm", "SLURM_NPROCS": "2", "SLURM_NTASKS": "2", "SLURM_PROCID": "1", "SLURM_STEPID": "0",
    "SLURM_STEP_ID": "0", "SLURM_STEP_NODELIST": "vm", "SLURM_STEP_NUM_NODES": "1", "SLURM_STEP_NUM_TASKS": "2",
    "SLURM_STEP_TASKS_PER_NODE": "2", "SLURM_SUBMIT_HOST": "vm", "SLURM_TASKS_PER_NODE": "2", "SLURM_TASK_PID": "24868",
}


def test_slurm_task_maps_to_torch_distributed():
    assert torch_env_from_slurm(SLURM_TASK) == {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2",
                                                "MASTER_ADDR": "vm", "MASTER_PORT": "20039"}
    # The same task in a step of 8 tasks on 2 of a job's 3 nodes: the step's nodes and counts win.
    step = {**SLURM_TASK, "SLURM_JOB_NODELIST": "gpu[002-003,010]", "SLURM_JOB_NUM_NODES": "3",
            "SLURM_STEP_NODELIST": "gpu[003,010]", "SLURM_STEP_NUM_NODES": "2", "SLURM_NNODES": "2",
            "SLURM_STEP_NUM_TASKS": "8", "SLURM_NTASKS": "8", "SLURM_PROCID": "5", "SLURM_NODEID": "1"}
    env = torch_env_from_slurm(step)
    assert (env["RANK"], env["LOCAL_RANK"], env["WORLD_SIZE"], env["LOCAL_WORLD_SIZE"], env["MASTER_ADDR"]) == \
        ("5", "1", "8", "4", "gpu003")
    assert torch_env_from_slurm({**SLURM_TASK, "MASTER_PORT": "29500"})["MASTER_PORT"] == "29500"


def test_expand_nodelist():
    assert expand_nodelist("vm") == ["vm"]
    assert expand_nodelist("gpu[002-004,010],login1") == ["gpu002", "gpu003", "gpu004", "gpu010", "login1"]
    assert expand_nodelist("a[8-11]-ib,b[1,3]") == ["a8-ib", "a9-ib", "a10-ib", "a11-ib", "b1", "b3"]


def test_launch_inside_slurm_spans_every_node_of_the_job(tmp_path: Path):
    from s1x.train.distributed import launch_command

    dist = DistributedConfig(strategy=DistributedStrategy.deepspeed, processes_per_node=8, deepspeed_config="zero3.json")
    slurm_job = {"SLURM_JOB_ID": "7", "SLURM_JOB_NUM_NODES": "2", "SLURM_CPUS_ON_NODE": "64", "SLURM_NTASKS": "2"}
    command = launch_command(dist, tmp_path / "job.yaml", slurm_job)
    assert command[:7] == ["srun", "--overlap", "--kill-on-bad-exit=1", "--nodes=2", "--ntasks=16", "--ntasks-per-node=8",
                           "--cpus-per-task=8"]
    assert command[-3:] == ["-m", "s1x.train", str(tmp_path / "job.yaml")]
    assert "--standalone" in launch_command(dist, tmp_path / "job.yaml", {})


@pytest.mark.skipif(shutil.which("srun") is None, reason="no SLURM here; .ci/slurm-up starts the CI cluster")
def test_training_inside_a_slurm_job_runs_its_ranks_as_an_srun_step(tiny_model_dir: Path, tmp_path: Path,
                                                                    one_process: Path):
    """The train stage as a SLURM cell runs it: inside a job, its 2 ZeRO-3 ranks start as an srun step."""
    script = (f"import logging, sys; sys.path.insert(0, {str(ROOT)!r}); logging.basicConfig(level=logging.INFO)\n"
              "from pathlib import Path\n"
              "from s1x.config import DistributedConfig, DistributedStrategy\n"
              "from tests.test_train import run_train\n"
              "from tests.test_train_distributed import CFG\n"
              "dist = DistributedConfig(strategy=DistributedStrategy.deepspeed, processes_per_node=2, deepspeed_config='zero3.json')\n"
              f"run_train(Path({str(tiny_model_dir)!r}), Path({str(tmp_path / 'out')!r}), CFG, dist)\n")
    result = subprocess.run(["srun", "--ntasks=1", "--cpus-per-task=2", sys.executable, "-c", script], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert "srun --overlap --kill-on-bad-exit=1 --nodes=1 --ntasks=2 --ntasks-per-node=2 --cpus-per-task=1" in result.stderr
    assert_same_training(tmp_path / "out", one_process)
