"""GPU check: s1x's own training batches and budget forcing on one GPU, with speed, memory and guarantees.

    python benchmarks/gpu_check.py --out gpu_check.json      # one H100/H200, 1-3 minutes; exits 2 without a GPU
    python benchmarks/gpu_check.py --smoke --out tmp/x.json  # tiny shapes, CPU allowed, seconds (tests/test_gpu_check.py)

No network. The model has Qwen2.5-0.5B's shape (hidden 896, 24 layers, 14 heads, 2 KV heads, vocabulary 151,936,
tied embeddings), random weights, saved and loaded back by s1x.models.load_model where s1x.devices places it.
The tokenizer is a byte-level BPE of 1,024 tokens trained here on s1x's embedded pool, with the ChatML template
and <|im_start|>, <|im_end|> as single tokens, so s1x.chat.S1Format works unchanged. The model keeps Qwen's
151,936-row vocabulary, not the tokenizer's: embedding and output layer are a quarter of its weights and most of
a step's memory, so a smaller one would measure another model; ids past the tokenizer's are never decoded.

1. SFT in bf16: AdamW, the loss masked as S1Format masks it, packed (s1x.train.packing.pack_batch) against padded
   (pad_batch), the same steps alternating after a warm-up of each, as benchmarks/packing.py does on a CPU.
   Lengths: log-normal with s1K's spread (sigma 0.8) and mean / 4 (1,175), capped at the 32K block / 16 = 2,048
   so the padded micro batch (8 x 2,048 tokens, ~2 MB of activations and fp32 logits per token) fits an 80 GB
   H100. Micro batch 8, two per step, 8 timed steps. MFU: 6 x parameters x real tokens (no attention) against
   the GPU's dense bf16 peak; HFU adds attention as sdpa computes it under an explicit mask, the whole T x T
   square of every row, packed rows included. Packing isolation: an example's logits alone against the same
   example packed behind another (transformers must build a block-diagonal mask from the position ids) and
   against that row with an all-ones attention mask, which lets it see the other example (a leak).
2. Budget forcing through s1x's HFEngine and run_forcing, greedy, 16 prompts: max 512 (thinking <= 512 for every
   sample), min 128 (>= 128 unless the generation limit hit), ignore 2 (exactly 2 extensions wherever the model
   ended thinking itself). A random model never ends thinking, so for min and ignore a hook on the output layer
   makes the delimiter the next token with probability 1/16 per step (a seeded coin per row).
Model parameters, optimizer states, training batches and engine inputs are asserted to be on the GPU.
Exit status: 2 without a GPU (unless --smoke); 1 when a forcing guarantee or packing isolation fails. The speed
targets (packed / padded >= 1.5, MFU >= 35 %) are reported, not enforced.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace as Shape  # the sizes of a run

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, Qwen2Config  # noqa: E402

from s1x.chat import IGNORE_INDEX, S1Format  # noqa: E402
from s1x.config import BudgetConfig, BudgetMode, EvalConfig, ExtendConfig, ModelConfig  # noqa: E402
from s1x.devices import detect  # noqa: E402
from s1x.embedded import generate_benchmark, generate_pool  # noqa: E402
from s1x.evaluate.budget import SampleState, run_forcing  # noqa: E402
from s1x.evaluate.engines.hf import HFEngine  # noqa: E402
from s1x.evaluate.modes import budget_config  # noqa: E402
from s1x.evaluate.policy import forcing_policy  # noqa: E402
from s1x.models import inference_placement, load_model, load_tokenizer  # noqa: E402
from s1x.train.memory import QWEN25_32B, memory_plan  # noqa: E402
from s1x.train.packing import pack_batch, pad_batch  # noqa: E402

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n'}}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
PEAK_BF16_FLOPS = {"H100 PCIe": 756e12, "H100": 989e12, "H200": 989e12}  # dense, per GPU; first name match wins
SIGMA, SEED = 0.8, 0
QWEN25_05B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                  num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True, rope_theta=1e6)
GPU = Shape(model=QWEN25_05B, mean_tokens=1175, cap=2048, micro_batch=8, accumulation=2, steps=8,  # SFT, then forcing:
            prompts=16, max_tokens=512, min_tokens=128, ignore_times=2, thinking_limit=1024, answer_limit=32, stop_every=16)
SMOKE = Shape(model=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         vocab_size=2048, tie_word_embeddings=True), mean_tokens=96, cap=256, micro_batch=4, accumulation=2,
              steps=2, prompts=4, max_tokens=16, min_tokens=12, ignore_times=2, thinking_limit=64, answer_limit=4, stop_every=4)

def build_checkpoint(shape: Shape, path: Path, device: str) -> None:
    """A random-weight Qwen2 and the BPE tokenizer, saved as a checkpoint directory."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1024, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator([r["question"] + "\n" + r["trace"] + "\nthink answer Wait" for r in generate_pool(300, 0)], trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        chat_template=CHATML)
    config = Qwen2Config(**shape.model, max_position_embeddings=32768, bos_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(SEED)
    with torch.device(device):  # random initialization on the GPU takes a second, on 16 CPU cores a minute
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)


def expect_on(device: torch.device, what: str, tensors) -> None:
    off = [tuple(t.shape) for t in tensors if t.device.type != device.type]
    assert not off, f"{what}: {len(off)} tensors not on {device.type}, e.g. shape {off[0]}"


def sft_examples(fmt: S1Format, shape: Shape, rng: np.random.Generator) -> list[dict]:
    """S1Format training pairs (prompt masked) whose thinking is random ids filling a log-normal length."""
    n = shape.micro_batch * shape.accumulation * (shape.steps + 1)
    mu = np.log(shape.mean_tokens) - SIGMA ** 2 / 2  # a log-normal's mean is exp(mu + sigma^2 / 2)
    lengths = np.clip(rng.lognormal(mu, SIGMA, n), 1, shape.cap).astype(int)
    think_start = len(fmt.encode(fmt.markers.think_start))
    rows, examples = generate_benchmark(n, SEED), []
    for row, length in zip(rows, lengths):
        ex = fmt.training_example(row["question"], "", row["answer"])
        at = next(i for i, label in enumerate(ex["labels"]) if label != IGNORE_INDEX) + think_start
        filler = rng.integers(0, shape.model["vocab_size"], max(1, length - len(ex["input_ids"]))).tolist()
        examples.append({k: (v[:at] + filler + v[at:])[: max(length, at + 1)] for k, v in ex.items()})
    return examples


def train_step(model, optimizer, micro_batches: list[dict], device: torch.device) -> tuple[float, int]:
    """Seconds and peak bytes of forward + backward of each micro batch, then one AdamW step."""
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for batch in micro_batches:
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        expect_on(device, "training batch", batch.values())
        (model(**batch).loss / len(micro_batches)).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    sync(device)
    return time.perf_counter() - start, torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def attention_flops(widths: list[int], hidden: int, layers: int) -> float:
    """QK^T and AV over full T x T squares (an explicit mask skips nothing), forward and backward."""
    return 3 * 4 * hidden * layers * sum(w * w for w in widths)


@torch.no_grad()
def packing_isolation(model, examples: list[dict], device: torch.device) -> dict:
    model.eval()
    a, b = ({"input_ids": e["input_ids"][:48], "labels": e["labels"][:48]} for e in examples[:2])
    alone = model(input_ids=torch.tensor([b["input_ids"]], device=device)).logits[0].float()
    row = {k: v.to(device) for k, v in pack_batch([a, b]).items() if k != "labels"}
    packed = model(**row).logits[0, len(a["input_ids"]):].float()
    leaked = model(**row, attention_mask=torch.ones_like(row["input_ids"])).logits[0, len(a["input_ids"]):].float()
    model.train()
    error, leak = (alone - packed).abs().max().item(), (alone - leaked).abs().max().item()
    return {"max_abs_error": error, "max_abs_error_if_leaking": leak, "isolated": error < 0.1 * leak}


def sft(model, fmt: S1Format, shape: Shape, device: torch.device, peak: float | None) -> dict:
    dense_mask = model.config._attn_implementation in ("sdpa", "eager")  # else the attention FLOPs are unknown here
    rng = np.random.default_rng(SEED)
    examples = sft_examples(fmt, shape, rng)
    mb = [examples[i:i + shape.micro_batch] for i in range(0, len(examples), shape.micro_batch)]
    steps = [mb[i:i + shape.accumulation] for i in range(0, len(mb), shape.accumulation)]
    warmup, timed = steps[0], steps[1:]
    real = sum(len(e["input_ids"]) for step in timed for b in step for e in b)
    widths = {"padded": [max(len(e["input_ids"]) for e in b) for step in timed for b in step for _ in b],
              "packed": [sum(len(e["input_ids"]) for e in b) for step in timed for b in step]}
    isolation = packing_isolation(model, examples, device)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device.type == "cuda")
    collate = {"padded": lambda b: pad_batch(b, fmt.tokenizer.pad_token_id), "packed": pack_batch}
    for fn in collate.values():
        train_step(model, optimizer, [fn(b) for b in warmup], device)
    states = [t for state in optimizer.state.values() for t in state.values() if torch.is_tensor(t) and t.dim()]
    expect_on(device, "optimizer states", states)
    seconds, memory = dict.fromkeys(collate, 0.0), dict.fromkeys(collate, 0)
    for step in timed:
        for name, fn in collate.items():
            took, peak_bytes = train_step(model, optimizer, [fn(b) for b in step], device)
            seconds[name] += took
            memory[name] = max(memory[name], peak_bytes)
    parameters = sum(p.numel() for p in model.parameters())
    cfg = model.config
    out = {"attn_implementation": cfg._attn_implementation, "examples": len(examples), "timed_steps": len(timed),
           "micro_batch": shape.micro_batch, "accumulation": shape.accumulation, "real_tokens": real,
           "mean_length": real / len(widths["padded"]),
           "max_length": max(len(e["input_ids"]) for e in examples), "packing_isolation": isolation}
    for name in collate:
        computed = sum(widths[name])
        flops = 6 * parameters * real
        hardware = flops + attention_flops(widths[name], cfg.hidden_size, cfg.num_hidden_layers)
        out[name] = {"seconds": seconds[name], "tokens_per_second": real / seconds[name], "computed_tokens": computed,
                     "peak_memory_gib": memory[name] / 2 ** 30,
                     "mfu": flops / seconds[name] / peak if peak else None,
                     "hfu_with_masked_attention": hardware / seconds[name] / peak if peak and dense_mask else None}
    out["packed_over_padded"] = out["packed"]["tokens_per_second"] / out["padded"]["tokens_per_second"]
    return out


class Stopper:
    """Forward hook on the output layer: the delimiter becomes the next token with probability p, else never."""

    def __init__(self, model, token: int, p: float, device: torch.device) -> None:
        self.token, self.p = token, p
        self.generator = torch.Generator(device=device).manual_seed(SEED)
        self.handle = model.get_output_embeddings().register_forward_hook(self)

    def __call__(self, module, inputs, logits):
        last = logits[:, -1]
        coin = torch.rand(last.shape[0], generator=self.generator, device=last.device) < self.p
        last[:, self.token] = torch.where(coin, last.max(-1).values + 1, last.min(-1).values - 1)
        return logits


def force(fmt: S1Format, engine: HFEngine, prompts: list[list[int]], budget: BudgetConfig, shape: Shape) -> dict:
    policy = forcing_policy(fmt, EvalConfig(max_thinking_tokens=shape.thinking_limit, max_answer_tokens=shape.answer_limit),
                       budget, ExtendConfig(name="wait", string="Wait"))
    states = [SampleState(p, policy) for p in prompts]
    generated = 0

    def counting(requests):
        nonlocal generated
        outputs = engine.generate(requests)
        generated += sum(map(len, outputs))
        return outputs

    device = engine.model.device
    sync(device)
    start = time.perf_counter()
    run_forcing(counting, states)
    sync(device)
    seconds = time.perf_counter() - start
    thinking = [s.thinking_tokens for s in states]
    n, k = getattr(budget, "tokens", None), getattr(budget, "times", None)  # what its mode has of the two
    if budget.mode is BudgetMode.max:
        guarantee = all(t <= n for t in thinking) and any(s.capped for s in states)
    elif budget.mode is BudgetMode.min:
        guarantee = all(s.thinking_tokens >= n or s.hit_limit for s in states) and sum(s.extensions for s in states) > 0
    else:
        guarantee = all(s.extensions == k if not s.hit_limit else s.extensions <= k for s in states) \
            and any(s.extensions == k for s in states)
    guarantee = guarantee and all(fmt.think_end_id not in s.generated[: s.thinking_end] for s in states)
    return {"budget": f"{budget.mode.value} {n if k is None else k}", "mode": budget.mode.value, "tokens": n, "times": k,
            "thinking_limit": shape.thinking_limit, "samples": len(states), "generated_tokens": generated,
            "seconds": seconds, "tokens_per_second": generated / seconds, "thinking_tokens_min": min(thinking),
            "thinking_tokens_max": max(thinking), "extensions": sum(s.extensions for s in states),
            "capped": sum(s.capped for s in states), "hit_limit": sum(s.hit_limit for s in states), "guarantee": guarantee,
            "per_sample": [{"thinking_tokens": s.thinking_tokens, "extensions": s.extensions, "capped": s.capped,
                            "hit_limit": s.hit_limit, "rounds": s.rounds} for s in states]}


def forcing(model, fmt: S1Format, shape: Shape) -> dict:
    device = model.device
    model.config.use_cache = True
    engine = HFEngine(model, fmt.tokenizer, batch_size=shape.prompts, temperature=0.0)
    generate = model.generate

    def checked(*args, **kwargs):
        expect_on(device, "engine inputs", [kwargs["input_ids"], kwargs["attention_mask"]])
        return generate(*args, **kwargs)

    model.generate = checked
    prompts = [fmt.encode(fmt.prompt(r["question"])) for r in generate_benchmark(shape.prompts, SEED + 1)]
    results = {"max": force(fmt, engine, prompts, budget_config(BudgetMode.max, tokens=shape.max_tokens), shape)}
    stopper = Stopper(model, fmt.think_end_id, 1 / shape.stop_every, device)
    results["min"] = force(fmt, engine, prompts, budget_config(BudgetMode.min, tokens=shape.min_tokens), shape)
    results["ignore"] = force(fmt, engine, prompts, budget_config(BudgetMode.ignore, times=shape.ignore_times), shape)
    stopper.handle.remove()
    return results


def table(report: dict) -> list[list[str]]:
    s, f = report["sft"], report["forcing"]
    pct = (lambda x: "n/a" if x is None else f"{100 * x:.1f} %")
    ok = (lambda good: "ok" if good else "FAIL")
    target = (lambda good: "smoke" if report["smoke"] else ok(good))  # tiny shapes on a CPU meet no speed target
    rows = [["device", f"{report['device_name']}, {report['placement']['dtype']}, attention {report['attn_implementation']} "
             f"(SFT: {s['attn_implementation']})", "", ""],
            ["model", f"{report['parameters']:,} parameters, random weights", "", ""]]
    for name in ("padded", "packed"):
        v = s[name]
        rows.append([f"sft {name}", f"{v['tokens_per_second']:,.0f} tokens/s, peak {v['peak_memory_gib']:.1f} GiB, "
                     f"HFU {pct(v['hfu_with_masked_attention'])}", "", ""])
    mfu, iso = s["packed"]["mfu"], s["packing_isolation"]
    rows += [["packed / padded", f"{s['packed_over_padded']:.2f}x", ">= 1.5", target(s["packed_over_padded"] >= 1.5)],
             ["MFU packed (6N)", pct(mfu), ">= 35 %", "n/a" if mfu is None else target(mfu >= 0.35)],
             ["packing isolation", f"{iso['max_abs_error']:.3g} (leak {iso['max_abs_error_if_leaking']:.3g})",
              "< 0.1 x leak", ok(iso["isolated"])]]
    for v in f.values():
        rows.append([f"forcing {v['budget']}", f"{v['tokens_per_second']:,.0f} tokens/s, thinking {v['thinking_tokens_min']}-"
                     f"{v['thinking_tokens_max']}, {v['extensions']} ext, {v['capped']} capped, {v['hit_limit']} at limit",
                     "guarantee", ok(v["guarantee"])])
    return rows


def paper_memory_plan() -> dict:
    """The paper's run (Qwen2.5-32B, block 32768, 16 GPUs of 80 GB, FSDP, checkpointing), printed and returned:
    per GPU, with transformers' whole-block fp32 logits and with a loss chunked by 2048 tokens (s1x/train/memory.py)."""
    plans = {}
    for name, chunk in (("whole-block logits", None), ("loss in chunks of 2048 tokens", 2048)):
        plan = memory_plan(QWEN25_32B, block=32768, gpus=16, loss_chunk=chunk)
        print(f"memory plan, Qwen2.5-32B at block 32768 on 16 x 80 GB, FSDP, {name}: "
              f"{'fits' if plan.fits(80) else 'does not fit'}")
        print("\n".join("  " + line for line in plan.lines()))
        plans[name] = {"total_gb": plan.total / 1e9, "fits_80gb": plan.fits(80)}
    return plans


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu_check.json")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes; a CPU is allowed")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="if the padded batch runs out of memory")
    parser.add_argument("--attn", help="attention for the SFT part (default: load_model's, sdpa), e.g. flex_attention, "
                        "which skips the blocks between packed examples but compiles first (unmeasured)")
    args = parser.parse_args()
    machine = detect()
    if machine.gpus == 0 and not args.smoke:
        print("gpu_check: no GPU visible to torch (torch.cuda.device_count() == 0); --smoke runs on a CPU", file=sys.stderr)
        return 2
    shape, started = (SMOKE if args.smoke else GPU), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        build_checkpoint(shape, Path(tmp), "cuda" if machine.gpus else "cpu")
        placement = inference_placement(tmp, "bfloat16", machine)
        model = load_model(tmp, "bfloat16", placement)
        fmt = S1Format(load_tokenizer(tmp), ModelConfig(name="gpu-check", path=tmp))
    device = model.device
    assert device.type == placement.device == ("cuda" if machine.gpus else "cpu"), (device, placement)
    expect_on(device, "model parameters", model.parameters())
    model.config.use_cache = False  # as s1x's training sets it: packed rows need its absence
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = next((flops for gpu, flops in PEAK_BF16_FLOPS.items() if gpu in name), None)
    report = {"device_name": name, "machine": asdict(machine), "placement": asdict(placement), "smoke": args.smoke,
              "attn_implementation": model.config._attn_implementation, "parameters": sum(p.numel() for p in model.parameters()),
              "peak_bf16_flops": peak, 
              "versions": {"torch": torch.__version__, "transformers": transformers.__version__}}
    if args.attn:
        model.set_attn_implementation(args.attn)
    report["sft"] = sft(model, fmt, shape, device, peak)
    if args.attn:
        model.set_attn_implementation(report["attn_implementation"])  # forcing runs what evaluation loads
    expect_on(device, "model parameters after training", model.parameters())
    report["forcing"] = forcing(model, fmt, shape)
    report["tensors_on_device"] = True  # every expect_on above passed
    report["seconds"] = time.perf_counter() - started
    report["table"] = table(report)
    report["passed"] = report["sft"]["packing_isolation"]["isolated"] and all(v["guarantee"] for v in report["forcing"].values())
    rows = [["check", "value", "target", "result"], *report["table"]]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    report["memory_plan_32b"] = paper_memory_plan()
    print(f"{report['seconds']:.0f} s; {'passed' if report['passed'] else 'FAILED'}; written to {args.out}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
