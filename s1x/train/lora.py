"""LoRA through PEFT: low-rank adapters train on a frozen base, then merge into plain weights.

The merged checkpoint is an ordinary model directory, so evaluation (either engine) loads a
LoRA run exactly like a full fine-tune; the adapter itself is kept beside it for reference.
"""
from __future__ import annotations

from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model

from s1x.config import TrainConfig
from s1x.models import load_model


def add_adapters(model: torch.nn.Module, cfg: TrainConfig) -> PeftModel:
    """Freeze the model and wrap train.lora_target_modules with trainable adapters."""
    lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.lora_target_modules), task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def merge_adapter(base_path: str, dtype: str, adapter_dir: Path, out_dir: Path) -> None:
    """Fold the trained adapter into the base weights and save a full checkpoint to out_dir."""
    model = PeftModel.from_pretrained(load_model(base_path, dtype), str(adapter_dir))
    model.merge_and_unload().save_pretrained(out_dir)
