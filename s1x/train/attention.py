"""Which attention training runs: packed rows without a square mask where the hardware allows.

With sdpa a packed row gets an explicit block-diagonal mask, so attention computes the whole square of the row
(0.42x padded on an H200, benchmarks/results/); FlashAttention-2's varlen kernel and flex_attention's document
block mask compute only each example's own triangle. A pure function of what is installed, so it is tested on CPUs.
"""
from __future__ import annotations

from s1x.config import Attention, ConfigError

IMPLEMENTATIONS = {Attention.flash: "flash_attention_2", Attention.flex: "flex_attention", Attention.sdpa: "sdpa"}


def training_attention(requested: Attention, gpu: bool, flash_installed: bool, flex_available: bool) -> str:
    """transformers' attn_implementation for training: `requested`, or for auto the first of flash, flex and
    sdpa that can run here. A requested one that cannot is a ConfigError naming train.attention."""
    runs = {Attention.flash: gpu and flash_installed, Attention.flex: gpu and flex_available, Attention.sdpa: True}
    if requested is Attention.auto:
        return IMPLEMENTATIONS[next(choice for choice, ok in runs.items() if ok)]
    if not runs[requested]:
        why = "needs a GPU" if not gpu else ("flash-attn is not installed" if requested is Attention.flash
                                             else "this torch has no flex_attention")
        raise ConfigError(f"train.attention={requested.value}: {why}; train.attention=auto picks what runs here")
    return IMPLEMENTATIONS[requested]
