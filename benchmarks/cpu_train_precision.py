"""Training on a CPU in bf16: tokens/s of one optimizer step in fp32, under bf16 autocast and with bf16 weights.

bf16 autocast (fp32 master weights and optimizer state, matmuls in bf16) is what TrainingArguments(bf16=True)
does on a CPU, through accelerate; on CPUs with AMX (flag amx_bf16) oneDNN runs those matmuls on the tile
units. Pure bf16 weights are measured too, though AdamW updates of lr x ~1e-3 vanish in bf16's 8-bit mantissa.
The three variants train SmolLM2-135M (the embedded checkpoint) on the embedded pool's s1-format examples, the
embedded default's step (global batch 16 = 2 packed micro batches of 8: forward + backward of each, then one
fused AdamW step), in turn step by step after a warm-up of each; ratios are per step, medians quoted.

--losses then runs s1x's own train stage (the Trainer) on the embedded default's 256 examples for 2 epochs (32
steps) with distributed.bf16=false and =true and prints both loss curves and their end-to-end tokens/s.

    python benchmarks/cpu_train_precision.py            # ~5 min on 2 cores
    python benchmarks/cpu_train_precision.py --losses   # + two full trainings, ~15 min more
    ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 python benchmarks/cpu_train_precision.py   # as on a CPU without AMX
Target: autocast / fp32 tokens/s at least 1.5 where the CPU has AMX, and the loss curves within 0.05 per step.
"""
from __future__ import annotations

import argparse
import copy
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from s1x.chat import S1Format  # noqa: E402
from s1x.schemas import register  # noqa: E402
from s1x.models import load_model, load_tokenizer, resolve_model_path  # noqa: E402
from s1x.select.pool import load_pool  # noqa: E402
from s1x.train.distributed import cpu_flags  # noqa: E402
from s1x.train.packing import pack_batch  # noqa: E402
from s1x.validate import validated  # noqa: E402

MICRO_BATCH, ACCUMULATION, STEPS, ROWS, SEED = 8, 2, 6, 256, 0


def embedded_default():
    register()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return validated(compose("config", []))


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, micro_batches: list[dict],
               autocast: bool) -> float:
    start = time.perf_counter()
    for batch in micro_batches:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = model(**batch, use_cache=False).loss
        (loss / len(micro_batches)).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def step_speed(path: str, examples: list[dict]) -> None:
    per_step = MICRO_BATCH * ACCUMULATION
    steps = [[pack_batch(examples[i + j:i + j + MICRO_BATCH]) for j in range(0, per_step, MICRO_BATCH)]
             for i in range(0, per_step * (STEPS + 1), per_step)]
    tokens = [sum(int(b["input_ids"].numel()) for b in step) for step in steps]
    fp32 = load_model(path, "float32").train()
    variants = {"fp32": (fp32, False), "autocast": (copy.deepcopy(fp32), True),
                "bf16 weights": (copy.deepcopy(fp32).to(torch.bfloat16), False)}
    optimizers = {name: torch.optim.AdamW(model.parameters(), lr=2e-4, fused=True) for name, (model, _) in variants.items()}
    print(f"SmolLM2-135M, {torch.get_num_threads()} threads, cpu capability {torch.backends.cpu.get_cpu_capability()}, "
          f"amx_bf16 {'amx_bf16' in cpu_flags()}, avx512_bf16 {'avx512_bf16' in cpu_flags()}, oneDNN capped at "
          f"{os.environ.get('ONEDNN_MAX_CPU_ISA', 'none')}; {STEPS} timed steps of "
          f"{ACCUMULATION} packed micro batches of {MICRO_BATCH} ({statistics.mean(tokens[1:]) / ACCUMULATION:.0f} "
          f"tokens a row)")
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for index, step in enumerate(steps):
        names = list(variants)
        names = names[index % 3:] + names[:index % 3]  # rotate who goes first
        for name in names:
            model, autocast = variants[name]
            elapsed = train_step(model, optimizers[name], step, autocast)
            if index:  # step 0 warms each variant up
                seconds[name].append(elapsed)
    rates = {name: [n / s for n, s in zip(tokens[1:], times)] for name, times in seconds.items()}
    for name, rate in rates.items():
        ratio = statistics.median(r / f for r, f in zip(rate, rates["fp32"]))
        print(f"{name:>13}: median {statistics.median(rate):6.0f} tokens/s  (min {min(rate):.0f}, max {max(rate):.0f})"
              f"  / fp32: {ratio:.2f}x")


def loss_curves(cfg, path: str, rows: list[dict]) -> None:
    from s1x.train.stage import train

    curves = {}
    for bf16 in (False, True):
        with tempfile.TemporaryDirectory() as home:
            out = Path(home) / "out"
            out.mkdir()
            stats = train(cfg.train, cfg.model, replace(cfg.distributed, bf16=bf16), path, rows, out,
                          Path(home) / "work")
        curves[bf16] = stats["losses"]
        print(f"distributed.bf16={str(bf16).lower()}: {stats['steps']} steps, {stats['tokens_per_second']:.0f} tokens/s, "
              f"final loss {stats['losses'][-1]:.4f}, bf16 recorded {stats['bf16']}")
    gaps = [abs(a - b) for a, b in zip(curves[False], curves[True])]
    print("step  fp32    bf16    |diff|")
    for step, (a, b, gap) in enumerate(zip(curves[False], curves[True], gaps), 1):
        print(f"{step:4d}  {a:.4f}  {b:.4f}  {gap:.4f}")
    print(f"largest |diff| {max(gaps):.4f}, mean {statistics.mean(gaps):.4f} (target: within 0.05 per step)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--losses", action="store_true", help="also train the embedded default in fp32 and bf16")
    args = parser.parse_args()
    cfg = embedded_default()
    path = resolve_model_path(cfg.model, ROOT / cfg.cache_dir)
    rows = random.Random(SEED).sample(load_pool(cfg.pool), ROWS)
    fmt = S1Format(load_tokenizer(path), cfg.model)
    examples = [fmt.training_example(r["question"], r["trace"], r.get("attempt") or r["answer"]) for r in rows]
    step_speed(path, examples)
    if args.losses:
        loss_curves(cfg, path, rows)


if __name__ == "__main__":
    main()
