"""The training memory plan: parameter counts of known models, and each term by hand on a small shape."""
from __future__ import annotations

import pytest

from s1x.train.memory import GB, QWEN25_05B, QWEN25_1_5B, QWEN25_32B, ModelShape, memory_plan


@pytest.mark.parametrize("shape, billions", [(QWEN25_32B, 32.76), (QWEN25_1_5B, 1.54), (QWEN25_05B, 0.49)])
def test_parameter_counts_are_the_published_ones(shape: ModelShape, billions: float):
    assert shape.parameters() / 1e9 == pytest.approx(billions, abs=0.005)


def test_each_term_by_hand():
    shape = ModelShape(hidden=8, intermediate=16, layers=2, heads=2, kv_heads=1, vocab=10)
    # A layer: q, o 64 each; k, v 8 x 4 = 32 each; biases 8 + 2 x 4; MLP 3 x 128; norms 16: 608.
    assert shape.layer_parameters() == 64 * 2 + 32 * 2 + 8 + 8 + 384 + 16 == 608
    assert shape.parameters() == 2 * 608 + 2 * 80 + 8 == 1384
    plan = memory_plan(shape, block=4, gpus=2, loss_chunk=None)
    assert plan.sharded_state == 16 * 1384 / 2 and plan.gathered_weights == 4 * 608
    one_layer = 2 * 4 * (5 * 8 + 2 * 4 + 4 * 16)
    assert plan.activations == 2 * 2 * 4 * 8 + one_layer and plan.loss == 8 * 4 * 10
    unsharded = memory_plan(shape, block=4, gpus=2, fsdp=False, checkpointing=False, loss_chunk=2)
    assert unsharded.sharded_state == 16 * 1384 and unsharded.activations == 2 * one_layer and unsharded.loss == 8 * 2 * 10


def test_the_papers_32k_block_fits_80_gb_only_with_a_chunked_loss():
    """s1's users could not fit block 32768 on 80 GB (#106): the fp32 logits of a 152K vocabulary over 32K tokens,
    and their gradient, are 40 GB a GPU."""
    whole, chunked = (memory_plan(QWEN25_32B, 32768, 16, loss_chunk=c) for c in (None, 2048))
    assert whole.loss / GB == pytest.approx(39.9, abs=0.1) and not whole.fits(80)
    assert chunked.fits(80) and chunked.total < whole.total - 35 * GB
