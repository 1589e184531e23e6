"""The chunked loss against transformers' loss on the embedded default's model (SmolLM2-135M), side by side:
seconds per forward and backward of one packed micro batch of the embedded pool's traces, and the ratio.

    python benchmarks/chunked_loss.py [--model DIR] [--rounds 5]

DIR: a checkpoint directory (default: the converted SmolLM2 in .s1x/cache, which `make run` writes).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from s1x.chat import S1Format  # noqa: E402
from s1x.config import ModelConfig  # noqa: E402
from s1x.embedded import generate_pool  # noqa: E402
from s1x.models import load_model, load_tokenizer  # noqa: E402
from s1x.train.loss import LOSS_CHUNK, ChunkedLoss  # noqa: E402
from s1x.train.packing import pack_batch  # noqa: E402


def step(model, batch, loss_fn) -> float:
    start = time.perf_counter()
    if loss_fn is None:
        model(**batch).loss.backward()
    else:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        loss_fn(model(**inputs, logits_to_keep=1), batch["labels"]).backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(ROOT / ".s1x" / "cache" / "models" / "smollm2-135m-instruct"))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tokenizer = load_tokenizer(args.model)
    fmt = S1Format(tokenizer, ModelConfig(name="smollm2", path=args.model))
    examples = [fmt.training_example(r["question"], r["trace"], r["answer"]) for r in generate_pool(16, 0)]
    batch = pack_batch(examples[:16])
    plain_model, chunked_model = load_model(args.model, "float32"), load_model(args.model, "float32")
    loss_fn = ChunkedLoss(chunked_model, LOSS_CHUNK)
    times = {"transformers": [], "chunked": []}
    for _ in range(args.rounds):  # alternated, so both see the same machine
        times["transformers"].append(step(plain_model, batch, None))
        times["chunked"].append(step(chunked_model, batch, loss_fn))
    tokens = batch["input_ids"].numel()
    plain, chunked = (statistics.median(times[k]) for k in ("transformers", "chunked"))
    print(f"one packed micro batch of {tokens} tokens, {args.rounds} rounds, median forward + backward (fp32, CPU threads {torch.get_num_threads()}):")
    print(f"  transformers' loss {plain:.3f} s   chunked loss {chunked:.3f} s   chunked / transformers {chunked / plain:.2f}x")


if __name__ == "__main__":
    main()
