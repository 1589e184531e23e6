"""Training throughput of packed rows against padded batches, on s1K-like example lengths.

No copy of s1K is available offline. What stands in for its lengths: log-normal draws with s1K's
mean (about 4.7M tokens over 1,000 rows = 4,700 tokens per example) and a spread of sigma 0.8
(95 % of examples between ~0.2x and ~4.8x the median), scaled down 32x to fit a CPU and capped at
the paper's block of 32,768 tokens scaled the same way (1,024). The model has SmolLM2-135M's
shape (30 layers, width 576, vocabulary 49,152), randomly initialized: speed does not depend on
the weights. Both variants train the same optimizer steps as the embedded default (global batch
16 = 2 micro batches of 8: forward + backward of each, then one AdamW step), alternating step by
step after a warm-up of each; tokens/s counts real tokens only.

    python benchmarks/packing.py            # target: packed / padded >= 1.5
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

from s1x.train.packing import pack_batch, pad_batch  # noqa: E402

S1K_MEAN_TOKENS, SIGMA, SCALE, BLOCK = 4_700, 0.8, 32, 32_768
MICRO_BATCH, ACCUMULATION, STEPS, SEED = 8, 2, 3, 0
SMOLLM2_135M = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                           num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                           tie_word_embeddings=True, use_cache=False)


def s1k_like_lengths(n: int, rng: np.random.Generator) -> list[int]:
    """Log-normal lengths with s1K's mean, scaled down by SCALE and capped at BLOCK / SCALE."""
    mean = S1K_MEAN_TOKENS / SCALE
    mu = np.log(mean) - SIGMA ** 2 / 2  # a log-normal's mean is exp(mu + sigma^2 / 2)
    return [int(x) for x in np.clip(rng.lognormal(mu, SIGMA, n), 16, BLOCK // SCALE)]


def examples(lengths: list[int], rng: np.random.Generator) -> list[dict]:
    """Random tokens; the first quarter of each example is prompt (no loss), as in s1x's loss mask."""
    rows = []
    for n in lengths:
        ids = rng.integers(0, SMOLLM2_135M.vocab_size, n).tolist()
        rows.append({"input_ids": ids, "labels": [-100] * (n // 4) + ids[n // 4:]})
    return rows


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, micro_batches: list[dict]) -> float:
    start = time.perf_counter()
    for batch in micro_batches:
        (model(**batch).loss / len(micro_batches)).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def main() -> None:
    rng = np.random.default_rng(SEED)
    step_examples = MICRO_BATCH * ACCUMULATION
    lengths = s1k_like_lengths(step_examples * (STEPS + 1), rng)
    micro_batches = [examples(lengths[i:i + MICRO_BATCH], rng) for i in range(0, len(lengths), MICRO_BATCH)]
    steps = [micro_batches[i:i + ACCUMULATION] for i in range(0, len(micro_batches), ACCUMULATION)]
    warmup, timed = steps[0], steps[1:]
    real = sum(len(e["input_ids"]) for step in timed for b in step for e in b)
    computed_padded = sum(MICRO_BATCH * max(len(e["input_ids"]) for e in b) for step in timed for b in step)
    print(f"stand-in for s1K: {len(lengths)} lengths ~ lognormal(mean {S1K_MEAN_TOKENS}/{SCALE}, sigma {SIGMA}), "
          f"capped at {BLOCK}/{SCALE}: mean {np.mean(lengths):.0f}, median {np.median(lengths):.0f}, "
          f"max {max(lengths)} tokens")
    print(f"model: SmolLM2-135M shape, random weights, float32, {torch.get_num_threads()} threads; "
          f"{len(timed)} timed steps of {ACCUMULATION} micro batches of {MICRO_BATCH}: {real:,} real tokens, "
          f"padding computes {computed_padded:,} ({computed_padded / real:.2f}x)")

    torch.manual_seed(SEED)
    model = LlamaForCausalLM(SMOLLM2_135M)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    collate = {"padded": lambda b: pad_batch(b, 0), "packed": pack_batch}
    for name, fn in collate.items():
        train_step(model, optimizer, [fn(b) for b in warmup])
    seconds = {name: 0.0 for name in collate}
    for step in timed:
        for name, fn in collate.items():
            seconds[name] += train_step(model, optimizer, [fn(b) for b in step])
    rate = {name: real / s for name, s in seconds.items()}
    for name in collate:
        print(f"{name:>7}: {seconds[name]:6.1f} s  {rate[name]:7.0f} training tokens/s")
    print(f"packed / padded: {rate['packed'] / rate['padded']:.2f}x (target >= 1.5)")


if __name__ == "__main__":
    main()
