"""The causal-LM loss without full-vocabulary logits: the labelled tokens' logits, a chunk of tokens at a time.

transformers computes fp32 logits over the whole block and keeps them (and their gradient) for the backward:
at s1's block of 32768 tokens and Qwen2.5's 152K vocabulary that is 40 GB a GPU (s1x/train/memory.py). Here the
model's forward computes the logits of one position only (`logits_to_keep=1`), the final norm's output is kept
by a hook, and the loss takes the output embedding over `chunk` labelled tokens at a time, each chunk
recomputed in the backward rather than stored. Same loss and gradients as transformers' (tests/test_loss.py).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from s1x.chat import IGNORE_INDEX


def _chunk_loss(hidden: torch.Tensor, head: torch.nn.Module, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(head(hidden).float(), targets, reduction="sum")


def chunked_cross_entropy(hidden: torch.Tensor, head: torch.nn.Module, labels: torch.Tensor, chunk: int) -> tuple[torch.Tensor, int]:
    """(summed loss, labelled tokens) of next-token prediction: position t predicts label t + 1, as transformers'."""
    targets = F.pad(labels, (0, 1), value=IGNORE_INDEX)[..., 1:].reshape(-1)
    kept = targets != IGNORE_INDEX
    states, targets = hidden.reshape(-1, hidden.shape[-1])[kept], targets[kept]
    if len(targets) <= chunk:  # one chunk: its logits are kept for the backward either way, so none recomputed
        return _chunk_loss(states, head, targets), len(targets)
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, len(targets), chunk):
        part = slice(start, start + chunk)
        total = total + checkpoint(_chunk_loss, states[part], head, targets[part], use_reentrant=False)
    return total, len(targets)


LOSS_CHUNK = 2048  # labelled tokens of logits at a time: 2.5 GB of fp32 logits and gradient at a 152K vocabulary


def chunked_loss(model: torch.nn.Module) -> Optional["ChunkedLoss"]:
    """The chunked loss where the model is a decoder, its final norm, then the output embedding (Llama, Qwen2,
    Mistral, ...); None elsewhere, where transformers' own loss is used: other layouts, and a model that DeepSpeed
    ZeRO-3 partitioned (its output embedding is gathered only inside the model's own forward)."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    if decoder is None or decoder is model or not isinstance(getattr(decoder, "norm", None), torch.nn.Module):
        return None
    head = model.get_output_embeddings()
    if head is None or hasattr(head.weight, "ds_numel"):
        return None
    return ChunkedLoss(model, LOSS_CHUNK)


class ChunkedLoss:
    """The Trainer's `compute_loss_func` for a causal LM that the collator asks for one position's logits."""

    def __init__(self, model: torch.nn.Module, chunk: int) -> None:
        self.head, self.chunk = model.get_output_embeddings(), chunk
        self.hidden: Optional[torch.Tensor] = None
        model.get_decoder().norm.register_forward_hook(self._keep)

    def _keep(self, module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
        self.hidden = output

    def __call__(self, outputs: object, labels: torch.Tensor, num_items_in_batch: Optional[int] = None) -> torch.Tensor:
        total, labelled = chunked_cross_entropy(self.hidden, self.head, labels, self.chunk)
        self.hidden = None
        return total / (num_items_in_batch if num_items_in_batch is not None else max(labelled, 1))
