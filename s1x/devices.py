"""Where a model runs for inference, decided from what the machine has: a pure function, and the probe that feeds it.

`place` answers, for a model of `parameters` weights asking for `requested_dtype`:
- device: "cuda" when the machine has a GPU, else "cpu".
- dtype: the requested one, with one exception. Float32 on a GPU is legitimate (exact, and what a small
  model's config may ask for), so it is kept, never silently lowered; bfloat16 on a GPU without bf16
  support (before Ampere) becomes float16, which has the same size and speed there (vLLM does the same).
  On a CPU the requested dtype is kept.
- device_map (transformers engine): "auto", spreading the layers over every GPU (and into CPU memory
  past them), when the weights plus headroom exceed one GPU; else None (the whole model on one GPU).
  Headroom is half the weights again, for the KV cache and activations of batched generation:
  Qwen2.5-32B keeps 256 KiB of KV cache per token, so 16 samples of 8K tokens take 34 GB, about
  half its 65 GB of bf16 weights. So 32B in bf16 spreads over an 80 GB H100 node and fits one H200.
- tensor_parallel_size (vLLM): every GPU of the node (1 on a CPU), lowered to the largest count that
  divides the attention heads, with the KV heads divisible by it or it by them, when the heads are
  given; vLLM refuses other sizes (Qwen2.5-7B's 28 heads on 8 GPUs run with 4).

Training does not use this: the Trainer (and DeepSpeed or FSDP) places the model itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

BYTES_PER_DTYPE = {"float32": 4, "bfloat16": 2, "float16": 2}
HEADROOM = 0.5  # KV cache and activations, as a share of the weights (see above)


@dataclass(frozen=True)
class Machine:
    gpus: int
    gpu_memory_bytes: int  # of the smallest GPU; 0 without one
    bf16_supported: bool  # by the GPUs; False without one


@dataclass(frozen=True)
class Placement:
    device: str  # "cuda" or "cpu"
    dtype: str  # a key of BYTES_PER_DTYPE
    device_map: Optional[str]  # "auto" when the weights exceed one GPU (transformers engine), else None
    tensor_parallel_size: int  # vLLM's default
    weight_bytes: int  # parameters x bytes of dtype


def place(machine: Machine, parameters: int, requested_dtype: str, attention_heads: Optional[int] = None,
          kv_heads: Optional[int] = None) -> Placement:
    """The placement of a model of `parameters` weights for inference on `machine` (rules in the module docstring)."""
    if requested_dtype not in BYTES_PER_DTYPE:
        raise ValueError(f"dtype {requested_dtype!r} is not one of {sorted(BYTES_PER_DTYPE)}")
    if machine.gpus == 0:
        return Placement("cpu", requested_dtype, None, 1, parameters * BYTES_PER_DTYPE[requested_dtype])
    dtype = "float16" if requested_dtype == "bfloat16" and not machine.bf16_supported else requested_dtype
    weight_bytes = parameters * BYTES_PER_DTYPE[dtype]
    fits_one_gpu = weight_bytes * (1 + HEADROOM) <= machine.gpu_memory_bytes
    return Placement("cuda", dtype, None if fits_one_gpu else "auto",
                     _tensor_parallel_size(machine.gpus, attention_heads, kv_heads), weight_bytes)


def _tensor_parallel_size(gpus: int, heads: Optional[int], kv_heads: Optional[int]) -> int:
    if heads is None:
        return gpus
    kv = kv_heads or heads
    return max(t for t in range(1, gpus + 1) if heads % t == 0 and (kv % t == 0 or t % kv == 0))


def detect() -> Machine:
    """What this process's torch sees: visible GPUs (CUDA_VISIBLE_DEVICES applies), the smallest one's memory, bf16."""
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus == 0:
        return Machine(0, 0, False)
    memory = min(torch.cuda.get_device_properties(i).total_memory for i in range(gpus))
    return Machine(gpus, memory, torch.cuda.is_bf16_supported())
