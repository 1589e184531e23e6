"""Training batches: padded to the longest example, or packed into one row without padding.

A packed row holds a micro batch's examples back to back, position ids restarting at 0 at each
one and no attention mask. With no KV cache, transformers then builds a block-diagonal causal
mask from the position ids, so no example attends to another; the first label of each example
is ignored, since it would be predicted from the previous example's last token. Packing keeps
the examples of every micro batch (and so every optimizer step) those of padded batching, so it
changes speed, not what is learned.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from transformers import DataCollatorWithFlattening

from s1x.chat import IGNORE_INDEX

Collator = Callable[[list[dict]], dict[str, torch.Tensor]]


def pad_batch(examples: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest example; padded labels are ignored by the loss."""
    width = max(len(e["input_ids"]) for e in examples)

    def padded(key: str, fill: int) -> torch.Tensor:
        return torch.tensor([e[key] + [fill] * (width - len(e[key])) for e in examples])

    attention_mask = torch.tensor([[1] * len(e["input_ids"]) + [0] * (width - len(e["input_ids"])) for e in examples])
    return {"input_ids": padded("input_ids", pad_id), "attention_mask": attention_mask,
            "labels": padded("labels", IGNORE_INDEX)}


pack_batch: Collator = DataCollatorWithFlattening(separator_id=IGNORE_INDEX, return_tensors="pt")


def collator(packing: bool, pad_id: int, logits_to_keep: Optional[int] = None) -> Collator:
    """Packed or padded batches; with `logits_to_keep`, the model is asked for that many positions' logits only
    (the chunked loss, s1x/train/loss.py, computes the rest from the hidden states)."""
    collate = pack_batch if packing else lambda examples: pad_batch(examples, pad_id)
    if logits_to_keep is None:
        return collate
    return lambda examples: {**collate(examples), "logits_to_keep": logits_to_keep}
