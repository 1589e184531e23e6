"""The chunked loss equals transformers' causal-LM loss, in value and gradients, padded and packed, and the model's
forward then computes one position's logits only."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from s1x.chat import IGNORE_INDEX
from s1x.models import load_model
from s1x.train.loss import ChunkedLoss, chunked_loss


def _batch(packed: bool) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 300, (2, 24), generator=generator)
    labels = ids.clone()
    labels[:, :7] = IGNORE_INDEX  # the prompt
    if not packed:
        return {"input_ids": ids, "labels": labels}
    positions = torch.cat([torch.arange(10), torch.arange(14)]).repeat(2, 1)  # two examples a row
    labels[:, 10] = IGNORE_INDEX  # as the packing collator: nothing predicted across examples
    return {"input_ids": ids, "labels": labels, "position_ids": positions}


def _gradients(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("chunk", [1, 5, 4096])
def test_chunked_loss_equals_transformers_loss(tiny_model_dir: Path, packed: bool, chunk: int):
    batch = _batch(packed)
    plain_model = load_model(str(tiny_model_dir), "float32")
    plain = plain_model(**batch).loss
    plain.backward()

    model = load_model(str(tiny_model_dir), "float32")
    loss_fn = ChunkedLoss(model, chunk)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    outputs = model(**inputs, logits_to_keep=1)
    assert outputs.logits.shape[1] == 1  # one position's logits, not the block's
    chunked = loss_fn(outputs, batch["labels"])
    chunked.backward()
    assert chunked.item() == pytest.approx(plain.item(), rel=1e-5)
    want, got = _gradients(plain_model), _gradients(model)
    assert want.keys() == got.keys() and len(got) > 10
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-6, msg=name)


def test_the_accumulated_batch_divides_the_sum(tiny_model_dir: Path):
    """With gradient accumulation the Trainer passes the labelled tokens of all micro batches: the sum over them."""
    model = load_model(str(tiny_model_dir), "float32")
    loss_fn, batch = ChunkedLoss(model, 8), _batch(False)
    outputs = model(input_ids=batch["input_ids"], logits_to_keep=1)
    labelled = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
    mean = loss_fn(outputs, batch["labels"]).item()
    model(input_ids=batch["input_ids"], logits_to_keep=1)
    assert loss_fn(outputs, batch["labels"], num_items_in_batch=4 * labelled).item() == pytest.approx(mean / 4)


def test_models_without_a_final_norm_keep_transformers_loss(tiny_model_dir: Path):
    model = load_model(str(tiny_model_dir), "float32")
    assert chunked_loss(model) is not None
    assert chunked_loss(torch.nn.Linear(2, 2)) is None
