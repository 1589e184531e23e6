"""What one GPU holds while fine-tuning, from the model's shape alone: will a block size fit?

s1's 32B run trains at block 32768 on 16 H100s with FSDP; its users could not fit 32K on 80 GB A100s
(simplescaling/s1 #106). A plan in bytes per GPU, each term by its usual formula:
- sharded state (FSDP full shard over all GPUs): fp32 master weights, fp32 gradients and AdamW's two fp32
  moments, 16 bytes a parameter; plus the bf16 weights of the layers gathered at once (the one computing and
  the one prefetched);
- activations: with gradient checkpointing, each layer's bf16 input is kept, and one layer's intermediates are
  alive while it is recomputed (attention without a materialised score matrix: flash or flex);
  without checkpointing, every layer's intermediates;
- the loss: fp32 logits and their gradient over the whole block (transformers' default), or over a chunk of
  tokens where the loss is chunked.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

GB = 1e9


@dataclass(frozen=True)
class ModelShape:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    tied_embeddings: bool = False

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def layer_parameters(self) -> int:
        """Attention (q, o square; k, v by the KV heads, with q/k/v biases as Qwen2's), the SwiGLU MLP, 2 norms."""
        kv = self.kv_heads * self.head_dim
        attention = 2 * self.hidden * self.hidden + 2 * self.hidden * kv + self.hidden + 2 * kv
        return attention + 3 * self.hidden * self.intermediate + 2 * self.hidden

    def parameters(self) -> int:
        embeddings = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        return self.layers * self.layer_parameters() + embeddings + self.hidden

    def layer_activation_bytes(self, tokens: int) -> int:
        """bf16 intermediates one layer keeps for its backward: its inputs and outputs of attention and MLP
        (q, k, v, attention output, o, two norms) and the MLP's gate, up, their product and down's input."""
        kv = self.kv_heads * self.head_dim
        per_token = 5 * self.hidden + 2 * kv + 4 * self.intermediate
        return 2 * tokens * per_token


QWEN25_32B = ModelShape(hidden=5120, intermediate=27648, layers=64, heads=40, kv_heads=8, vocab=152064)
QWEN25_1_5B = ModelShape(hidden=1536, intermediate=8960, layers=28, heads=12, kv_heads=2, vocab=151936, tied_embeddings=True)
QWEN25_05B = ModelShape(hidden=896, intermediate=4864, layers=24, heads=14, kv_heads=2, vocab=151936, tied_embeddings=True)


@dataclass(frozen=True)
class MemoryPlan:
    sharded_state: float  # bytes per GPU: master weights, gradients, AdamW moments
    gathered_weights: float
    activations: float
    loss: float

    @property
    def total(self) -> float:
        return self.sharded_state + self.gathered_weights + self.activations + self.loss

    def fits(self, capacity_gb: float, headroom: float = 0.9) -> bool:
        """Within `headroom` of the GPU's memory: the allocator's fragmentation and CUDA's context take the rest."""
        return self.total <= headroom * capacity_gb * GB

    def lines(self) -> list[str]:
        terms = [("sharded master weights, gradients, AdamW", self.sharded_state),
                 ("gathered bf16 weights (2 layers)", self.gathered_weights),
                 ("activations", self.activations), ("loss (fp32 logits + their gradient)", self.loss)]
        return [f"{name:42s} {value / GB:7.1f} GB" for name, value in terms] + [f"{'total':42s} {self.total / GB:7.1f} GB"]


def memory_plan(shape: ModelShape, block: int, gpus: int, fsdp: bool = True, checkpointing: bool = True,
                loss_chunk: Optional[int] = None) -> MemoryPlan:
    """Bytes per GPU for one micro batch of `block` tokens; `loss_chunk`: tokens per chunk of a chunked loss."""
    shards = gpus if fsdp else 1
    state = 16 * shape.parameters() / shards
    gathered = 2 * 2 * shape.layer_parameters() if fsdp else 0
    one_layer = shape.layer_activation_bytes(block)
    if checkpointing:
        activations = shape.layers * 2 * block * shape.hidden + one_layer
    else:
        activations = shape.layers * one_layer
    loss = 2 * 4 * (loss_chunk or block) * shape.vocab  # fp32 logits and their gradient
    return MemoryPlan(state, gathered, activations, loss)
