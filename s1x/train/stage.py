"""The train stage: supervised fine-tuning on a selection, loss on thinking + answer only.

The transformers Trainer runs the loop (schedule, mixed precision, checkpoints, DeepSpeed and
FSDP); s1x supplies the s1-format examples and their loss mask, so what is learned is decided
here, not by a library's chat-template heuristics. Every training process runs `fit`: the
pipeline's own process for distributed=single, else the ranks torchrun starts with
`python -m s1x.train JOB`. Checkpoints go to a work directory that outlives a killed attempt,
so a rerun of the same stage resumes where the last checkpoint left off, in the same data order.
On the preemption signal (USR2) every process finishes its step and writes a checkpoint before the
job is requeued, so a preempted run loses minutes, not up to `save_steps` steps (lingua does the same).
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from omegaconf import OmegaConf
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_callback import ProgressCallback

from s1x.chat import S1Format
from s1x.config import ConfigError, DistributedConfig, DistributedStrategy, ModelConfig, TrainConfig, TrainMethod
from s1x.train.distributed import (cpu_flags, launch_command, start_deepspeed_comm, torch_env_from_slurm,
                                  trainer_options, uses_bf16)
from s1x.train.lora import add_adapters, merge_adapter
from s1x.models import load_model, load_tokenizer
from s1x.train.attention import training_attention
from s1x.train.loss import chunked_loss
from s1x.train.packing import collator

log = logging.getLogger("s1x.train")  # also when run as __main__ by a launcher
STATS_FILE = "train_stats.json"
ADAPTER_DIR = "adapter"
JOB_FILE, ROWS_FILE = "job.yaml", "rows.jsonl"
PREEMPTED_EXIT = 75  # EX_TEMPFAIL: a training process that stopped at a preemption checkpoint
# Dense bf16 peak per GPU, for model FLOPs utilization; other devices report tokens/s only.
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


@dataclass
class TrainJob:
    """What every training process needs; saved as YAML for the processes a launcher starts."""
    train: TrainConfig
    model: ModelConfig
    distributed: DistributedConfig
    base_path: str
    out_dir: str
    work_dir: str  # checkpoints, kept across killed attempts


def train(cfg: TrainConfig, model_cfg: ModelConfig, dist_cfg: DistributedConfig, base_path: str, rows: list[dict],
          out_dir: Path, work_dir: Path) -> dict:
    """Fine-tune the base model on `rows`; write the checkpoint, tokenizer and train_stats.json into out_dir.

    work_dir must survive a killed attempt (a rerun resumes from its checkpoints); it is removed
    once out_dir is complete.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    job = TrainJob(cfg, model_cfg, dist_cfg, base_path, str(out_dir), str(work_dir))
    if dist_cfg.strategy is DistributedStrategy.single:
        fit(job, rows)
    else:
        _launch(job, rows)
    if cfg.method is TrainMethod.lora:
        merge_adapter(base_path, model_cfg.dtype.value, out_dir / ADAPTER_DIR, out_dir)
    load_tokenizer(base_path).save_pretrained(out_dir)
    shutil.rmtree(work_dir)
    return json.loads((out_dir / STATS_FILE).read_text())


def write_job(job: TrainJob, rows: list[dict]) -> Path:
    """The job file every training process reads (`python -m s1x.train JOB`), its rows beside it."""
    work_dir = Path(job.work_dir)
    OmegaConf.save(OmegaConf.structured(job), work_dir / JOB_FILE)
    (work_dir / ROWS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return work_dir / JOB_FILE


def _launch(job: TrainJob, rows: list[dict]) -> None:
    """Start the training processes and wait for them. On the preemption signal this process waits for
    them to write their checkpoint (an srun step gets it forwarded) before submitit requeues the job."""
    command = launch_command(job.distributed, write_job(job, rows))
    log.info("train: %s", " ".join(command))
    process = subprocess.Popen(command)
    signalled: list[int] = []

    def defer(signum: int, frame: object) -> None:
        signalled.append(signum)
        if command[0] == "srun":  # srun forwards it to every rank; torchrun would die of it
            process.send_signal(signum)

    previous = _swap_handler(defer)
    try:
        returncode = process.wait()
    finally:
        _swap_handler(previous)
    if signalled and callable(previous):
        previous(signalled[0], None)  # submitit's handler: requeue the job, exit
    if returncode != 0:
        raise RuntimeError(f"training processes failed (exit {returncode}): {' '.join(command)}")


def _swap_handler(handler: object) -> object:
    """Install a USR2 handler, returning the previous one (signals can be handled in the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGUSR2, handler)


class SaveOnPreemption(TrainerCallback):
    """On the preemption signal (USR2: submitit's preemption, and SLURM's warning before a time limit),
    finish the step, write a checkpoint and stop; `hand_on` then passes the signal to whoever handled it
    before: in a SLURM job's own process submitit, which requeues the job; a training rank exits
    PREEMPTED_EXIT. Ranks agree on the step (one all-reduce of a flag per step), since the checkpoint of
    a sharded model is collective."""

    def __init__(self) -> None:
        self.signalled = self.stopped = False
        self.previous = _swap_handler(self._note)

    def _note(self, signum: int, frame: object) -> None:
        self.signalled = True
        log.warning("train: preemption signal: writing a checkpoint after this step")

    def on_step_end(self, args, state, control, **kwargs):
        if self._anyone_signalled(args):
            control.should_save = control.should_training_stop = self.stopped = True
            log.warning("train: checkpoint at step %d, then stopping for the requeue", state.global_step)
        return control

    def _anyone_signalled(self, args: TrainingArguments) -> bool:
        dist = torch.distributed
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self.signalled
        flag = torch.tensor([float(self.signalled)], device=args.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def restore(self) -> None:
        if self.previous is not None:
            _swap_handler(self.previous)

    def hand_on(self) -> None:
        """After the preemption checkpoint: the previous handler (submitit requeues), else exit PREEMPTED_EXIT."""
        if callable(self.previous):
            self.previous(signal.SIGUSR2, None)
        raise SystemExit(PREEMPTED_EXIT)


def fit(job: TrainJob, rows: list[dict]) -> None:
    """One training process: train, checkpoint every train.save_steps, save the result (rank 0 writes)."""
    cfg, out_dir = job.train, Path(job.out_dir)
    tokenizer = load_tokenizer(job.base_path)
    examples, truncated = _examples(S1Format(tokenizer, job.model), rows, cfg.block_size)
    processes = int(os.environ.get("WORLD_SIZE", 1))
    # Checkpoints of one process layout: a ZeRO-3 checkpoint of 8 ranks cannot resume as 1 process.
    run_dir = Path(job.work_dir) / f"{job.distributed.strategy.value}-x{processes}"
    args = training_arguments(cfg, job.distributed, run_dir, processes)
    # Under ZeRO-3, from_pretrained after the arguments and DeepSpeed's process group loads each rank's shard only.
    start_deepspeed_comm(job.distributed)
    model = load_model(job.base_path, job.model.dtype.value)
    model.config.use_cache = False  # training needs no KV cache, and packed rows need its absence
    attention = training_attention(cfg.attention, torch.cuda.is_available(), importlib.util.find_spec("flash_attn") is not None,
                                   importlib.util.find_spec("torch.nn.attention.flex_attention") is not None)
    model.set_attn_implementation(attention)
    loss = chunked_loss(model)
    if cfg.method is TrainMethod.lora:
        set_seed(cfg.seed)  # the adapters' random initialization
        model = add_adapters(model, cfg)
    throughput = Throughput()
    trainer = Trainer(model=model, args=args, train_dataset=examples, callbacks=[throughput], compute_loss_func=loss,
                      data_collator=collator(cfg.packing, tokenizer.pad_token_id, 1 if loss else None))
    if job.distributed.strategy is DistributedStrategy.fsdp and not trainer.is_fsdp_enabled:
        raise ConfigError("distributed=fsdp: accelerate shards with FSDP on GPUs only, and here would silently train "
                          "unsharded (DDP); use distributed=deepspeed on a CPU")
    resume = last_complete_checkpoint(run_dir)
    if resume is not None:
        log.info("train: resuming from %s", resume)
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(BarWithoutLogDicts)
    preemption = SaveOnPreemption()
    trainer.add_callback(preemption)
    try:
        result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    finally:
        preemption.restore()
    if preemption.stopped:
        preemption.hand_on()  # the checkpoint is written; the rerun resumes from it
    trainer.save_model(str(out_dir / ADAPTER_DIR if cfg.method is TrainMethod.lora else out_dir))
    if not trainer.is_world_process_zero():
        return
    parameters = sum(_numel(p) for p in model.parameters())
    stats = {
        "examples": len(examples), "truncated": truncated, "steps": result.global_step,
        "loss": f"chunked, {loss.chunk} tokens of logits at a time" if loss else "transformers (whole-block logits)",
        "attention": attention,
        "train_loss": result.training_loss, "resumed_from_step": throughput.first_step,
        "losses": [entry["loss"] for entry in trainer.state.log_history if "loss" in entry],
        "parameters": parameters, "trainable_parameters": sum(_numel(p) for p in model.parameters() if p.requires_grad),
        "processes": processes, "bf16": args.bf16, **throughput.summary(parameters, processes, args.bf16),
    }
    (out_dir / STATS_FILE).write_text(json.dumps(stats, indent=2))


def _examples(fmt: S1Format, rows: list[dict], block_size: int) -> tuple[list[dict], int]:
    """s1-format training pairs cut to block_size, and how many were cut."""
    examples = [fmt.training_example(r["question"], r["trace"], r.get("attempt") or r["answer"]) for r in rows]
    truncated = sum(len(e["input_ids"]) > block_size for e in examples)
    if truncated:
        log.warning("train: %d of %d examples exceed train.block_size=%d and are truncated",
                    truncated, len(examples), block_size)
    return [{k: v[:block_size] for k, v in e.items()} for e in examples], truncated


def training_arguments(cfg: TrainConfig, dist_cfg: DistributedConfig, run_dir: Path, processes: int) -> TrainingArguments:
    """The s1 recipe as Trainer arguments; the global batch is split over processes and accumulation steps."""
    if cfg.global_batch_size % (cfg.micro_batch_size * processes):
        raise ConfigError(f"train.global_batch_size ({cfg.global_batch_size}) must be a multiple of train.micro_batch_size "
                          f"({cfg.micro_batch_size}) x {processes} training processes")
    return TrainingArguments(
        output_dir=str(run_dir),
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.micro_batch_size,
        gradient_accumulation_steps=cfg.global_batch_size // (cfg.micro_batch_size * processes),
        lr_scheduler_type="cosine",
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        adam_beta1=cfg.adam_beta1,
        adam_beta2=cfg.adam_beta2,
        bf16=uses_bf16(dist_cfg, torch.cuda.is_bf16_supported() if torch.cuda.is_available() else None, cpu_flags()),
        use_cpu=not torch.cuda.is_available(),  # without it, DeepSpeed on a CPU counts 1 process, not WORLD_SIZE
        gradient_checkpointing=cfg.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},  # works with frozen (LoRA) inputs
        logging_steps=1,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=2,  # the newest may be half-written when killed; the one before it is whole
        include_num_input_tokens_seen="all" if cfg.packing else "non_padding",  # packed rows hold no padding
        report_to="none",
        seed=cfg.seed,
        data_seed=cfg.seed,
        remove_unused_columns=False,
        **trainer_options(dist_cfg),
    )


def _numel(parameter: torch.nn.Parameter) -> int:
    """Elements of a parameter, also when ZeRO-3 has partitioned it away from this rank."""
    return getattr(parameter, "ds_numel", parameter.numel())


def last_complete_checkpoint(run_dir: Path) -> Optional[Path]:
    """The newest checkpoint the Trainer finished writing (it writes trainer_state.json last)."""
    done = [p for p in run_dir.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)


class BarWithoutLogDicts(ProgressCallback):
    """transformers' progress bar without the {'loss': ...} dicts it prints under it: s1x's own
    "train: step k/N loss ... tokens/s" line says the same, once, in the terminal and the log file."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        pass


class Throughput(TrainerCallback):
    """Tokens per second of this attempt (real tokens, padding excluded), logged with each loss."""

    def on_train_begin(self, args, state, control, **kwargs):
        self.start, self.first_step, self.first_tokens = time.perf_counter(), state.global_step, state.num_input_tokens_seen

    def on_train_end(self, args, state, control, **kwargs):
        self.seconds, self.tokens = time.perf_counter() - self.start, state.num_input_tokens_seen - self.first_tokens

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and "loss" in logs:
            rate = (state.num_input_tokens_seen - self.first_tokens) / (time.perf_counter() - self.start)
            log.info("train: step %d/%d  loss %.4f  %.0f tokens/s", state.global_step, state.max_steps, logs["loss"], rate)

    def summary(self, parameters: int, processes: int, bf16: bool) -> dict:
        """tokens/s, and on a known GPU in bf16 the model FLOPs utilization (6 x parameters per token)."""
        stats = {"seconds": self.seconds, "tokens": self.tokens, "tokens_per_second": self.tokens / self.seconds}
        peak = next((flops for name, flops in PEAK_BF16_FLOPS.items()
                     if bf16 and name in torch.cuda.get_device_name()), None) if torch.cuda.is_available() else None
        if peak:
            stats["mfu"] = 6 * parameters * stats["tokens_per_second"] / (peak * processes)
        log.info("train: %d tokens in %.1f s: %.0f tokens/s%s", self.tokens, self.seconds, stats["tokens_per_second"],
                 f", MFU {stats['mfu']:.1%}" if peak else "")
        return stats


def main(job_file: str) -> None:
    """Entry of each training process a launcher starts; SLURM-started ranks map SLURM's variables first."""
    if "RANK" not in os.environ and "SLURM_PROCID" in os.environ:
        os.environ.update(torch_env_from_slurm(os.environ))
    logging.basicConfig(level=logging.INFO if os.environ.get("RANK", "0") == "0" else logging.WARNING,
                        format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    job: TrainJob = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TrainJob), OmegaConf.load(job_file)))
    rows = [json.loads(line) for line in open(Path(job.work_dir) / ROWS_FILE)]
    fit(job, rows)
    # Left to interpreter exit, the process group's threads can abort a rank ("terminate called
    # without an active exception"), and srun --kill-on-bad-exit then fails the whole step.
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()

