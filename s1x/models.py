"""Where base models come from: a hub id, a local checkpoint, or a GGUF file shipped in a pip package.

A GGUF model is dequantized once with transformers and saved as a normal checkpoint in the
cache, so every later stage (training, either engine) loads plain safetensors.
For inference, `inference_placement` decides the device, dtype and device map from the machine
(s1x/devices.py) and `load_model` follows it; training loads on the CPU and lets the Trainer place.
"""
from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path
from typing import Optional

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GgufConfig, PreTrainedTokenizerBase

from s1x.config import GGUF_PREFIX, ConfigError, ModelConfig, gguf_file
from s1x.store import damage, rename_unless_done, set_aside, write_manifest
from s1x.devices import Machine, Placement, detect, place

log = logging.getLogger(__name__)
SOURCE_FILE = "gguf_source"  # the spec a conversion was made from: another spec under the same model.name is refused


def resolve_model_path(cfg: ModelConfig, cache_dir: str | Path) -> str:
    """A path or hub id that `from_pretrained` loads; converts GGUF models once into the cache."""
    if not cfg.path.startswith(GGUF_PREFIX):
        return cfg.path
    target = Path(cache_dir).resolve() / "models" / cfg.name
    if target.is_dir() and (problem := damage(target)):
        log.warning("the cached %s is damaged (%s): moved aside to %s and converted again", target, problem,
                    set_aside(target).name)
    if target.is_dir():
        source = (target / SOURCE_FILE).read_text() if (target / SOURCE_FILE).is_file() else cfg.path  # older: no record
        if source != cfg.path:
            raise ConfigError(f"model.path={cfg.path}: {target} holds the conversion of {source} under the "
                              f"same model.name={cfg.name}; give this model a model.name of its own")
        return str(target)
    gguf = gguf_file(cfg.path)
    log.info("converting %s to a checkpoint in %s (once)", gguf.name, target)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32,
            quantization_config=GgufConfig(dequantize=True),
        )
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / SOURCE_FILE).write_text(cfg.path)
        write_manifest(tmp)  # sizes checked at every use, as a store entry's
        rename_unless_done(tmp, target)  # a process that converted it first wins; its copy is the same
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(target)


def load_tokenizer(path: str) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def inference_placement(path: str, dtype: str, machine: Optional[Machine] = None) -> Placement:
    """Where the model at `path` runs for inference on `machine` (default: this one), from its config alone:
    parameters are counted on the meta device, without reading or allocating any weight."""
    config = AutoConfig.from_pretrained(path)
    with torch.device("meta"):
        parameters = sum(p.numel() for p in AutoModelForCausalLM.from_config(config).parameters())
    heads = getattr(config, "num_attention_heads", None)
    return place(machine or detect(), parameters, dtype, heads, getattr(config, "num_key_value_heads", None) or heads)


def load_model(path: str, dtype: str, placement: Optional[Placement] = None) -> torch.nn.Module:
    """The model in `dtype` on the CPU; with a placement, in its dtype, straight onto its device or device map.

    Training loads without one: the Trainer moves the model itself, and a ZeRO-3 rank must get no device map.
    """
    if placement is None:
        return AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    device_map = None if placement.device == "cpu" else placement.device_map or placement.device
    return AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, placement.dtype), device_map=device_map)
