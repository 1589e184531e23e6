"""The train stage: supervised fine-tuning on a selection, loss on thinking + answer only.

The transformers Trainer runs the loop (progress bar, schedule, mixed precision, and the
DeepSpeed/FSDP integrations later issues use); s1x supplies the s1-format examples and their
loss mask, so what is learned is decided here, not by a library's chat-template heuristics.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import torch
from transformers import Trainer, TrainingArguments

from s1x.chat import IGNORE_INDEX, S1Format
from s1x.config import ModelConfig, TrainConfig
from s1x.models import load_model, load_tokenizer

log = logging.getLogger(__name__)


def pad_batch(examples: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest example; padded labels are ignored by the loss."""
    width = max(len(e["input_ids"]) for e in examples)
    def padded(key: str, fill: int) -> torch.Tensor:
        return torch.tensor([e[key] + [fill] * (width - len(e[key])) for e in examples])
    input_ids = padded("input_ids", pad_id)
    attention_mask = torch.tensor([[1] * len(e["input_ids"]) + [0] * (width - len(e["input_ids"])) for e in examples])
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": padded("labels", IGNORE_INDEX)}


def train(cfg: TrainConfig, model_cfg: ModelConfig, base_path: str, rows: list[dict], out_dir: Path) -> dict:
    """Fine-tune the base model on `rows`; write the checkpoint and train_stats.json into out_dir."""
    tokenizer = load_tokenizer(base_path)
    model = load_model(base_path, model_cfg.dtype.value)
    fmt = S1Format(tokenizer, model_cfg)
    examples = [fmt.training_example(r["question"], r["trace"], r.get("attempt") or r["answer"]) for r in rows]
    truncated = sum(len(e["input_ids"]) > cfg.block_size for e in examples)
    if truncated:
        log.warning("train: %d of %d examples exceed train.block_size=%d and are truncated",
                    truncated, len(examples), cfg.block_size)
    examples = [{k: v[: cfg.block_size] for k, v in e.items()} for e in examples]

    use_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    args = TrainingArguments(
        output_dir=str(out_dir / "trainer"),
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.micro_batch_size,
        gradient_accumulation_steps=cfg.global_batch_size // cfg.micro_batch_size,
        lr_scheduler_type="cosine",
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        adam_beta1=cfg.adam_beta1,
        adam_beta2=cfg.adam_beta2,
        bf16=use_bf16,
        gradient_checkpointing=cfg.gradient_checkpointing,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=cfg.seed,
        data_seed=cfg.seed,
        remove_unused_columns=False,
    )
    trainer = Trainer(model=model, args=args, train_dataset=examples,
                      data_collator=lambda batch: pad_batch(batch, tokenizer.pad_token_id))
    start = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - start
    trainer.save_model(str(out_dir))
    shutil.rmtree(out_dir / "trainer", ignore_errors=True)
    tokenizer.save_pretrained(out_dir)
    tokens = sum(len(e["input_ids"]) for e in examples) * cfg.epochs
    stats = {
        "examples": len(examples), "truncated": truncated, "steps": result.global_step,
        "train_loss": result.training_loss, "seconds": seconds, "tokens_per_second": tokens / seconds,
        "losses": [entry["loss"] for entry in trainer.state.log_history if "loss" in entry],
    }
    (out_dir / "train_stats.json").write_text(json.dumps(stats, indent=2))
    return stats
