"""The select stage: which training examples, by strategy, size and seed.

Rows whose question appears in an evaluated benchmark are dropped first (decontamination), so
a selection can never train on a test question.
"""
from __future__ import annotations

import collections
import json
import random
import statistics
from pathlib import Path
from typing import Callable, Optional

from s1x.config import ConfigError, DataConfig, Strategy


def _random(rows: list[dict], cfg: DataConfig, lengths: Optional[list[int]]) -> list[int]:
    return random.Random(cfg.seed).sample(range(len(rows)), cfg.size)


def _longest(rows: list[dict], cfg: DataConfig, lengths: Optional[list[int]]) -> list[int]:
    # Ties broken by a seeded shuffle, so the seed still means something.
    order = list(range(len(rows)))
    random.Random(cfg.seed).shuffle(order)
    return sorted(order, key=lambda i: -lengths[i])[: cfg.size]


STRATEGIES: dict[Strategy, Callable[[list[dict], DataConfig, Optional[list[int]]], list[int]]] = {
    Strategy.random: _random,
    Strategy.longest: _longest,
}
NEEDS_LENGTHS = {Strategy.longest}


def select(cfg: DataConfig, pool: list[dict], benchmark_questions: set[str],
           count_tokens: Callable[[list[str]], list[int]], out_dir: Path) -> dict:
    """Write selection.jsonl (the chosen rows) and manifest.json; return the manifest."""
    rows = [r for r in pool if r["question"] not in benchmark_questions]
    if cfg.size > len(rows):
        raise ConfigError(f"data.size={cfg.size} exceeds the {len(rows)} pool rows left after decontamination")
    lengths = count_tokens([r["trace"] for r in rows])
    chosen = STRATEGIES[cfg.strategy](rows, cfg, lengths)
    selected = [{**rows[i], "trace_tokens": lengths[i]} for i in chosen]
    with open(out_dir / "selection.jsonl", "w") as handle:
        for row in selected:
            handle.write(json.dumps(row) + "\n")
    chosen_lengths = [r["trace_tokens"] for r in selected]
    manifest = {
        "strategy": cfg.strategy.value, "size": cfg.size, "seed": cfg.seed,
        "pool_rows": len(pool), "decontaminated": len(pool) - len(rows),
        "ids": [r["id"] for r in selected],
        "domains": dict(collections.Counter(r.get("domain", "unknown") for r in selected).most_common()),
        "trace_tokens": {"mean": statistics.fmean(chosen_lengths), "min": min(chosen_lengths), "max": max(chosen_lengths)},
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest
