"""Selection strategies on the embedded pool."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from s1x.benchmarks import load_benchmark
from s1x.config import ConfigError, DataConfig, PoolConfig, Strategy
from s1x.embedded import DOMAINS, generate_pool
from s1x.pool import load_pool
from s1x.select import select


def _words(texts: list[str]) -> list[int]:
    return [len(t.split()) for t in texts]


def _select(tmp_path: Path, strategy: Strategy, size: int, seed: int, pool=None, exclude=frozenset()) -> dict:
    out = tmp_path / f"{strategy.value}-{size}-{seed}"
    out.mkdir()
    pool = pool if pool is not None else generate_pool(500, seed=0)
    return select(DataConfig(strategy=strategy, size=size, seed=seed), pool, set(exclude), _words, out)


def test_embedded_pool_is_deterministic_varied_and_unbalanced():
    pool = generate_pool(1000, seed=0)
    assert pool == generate_pool(1000, seed=0)
    assert pool != generate_pool(1000, seed=1)
    domains = Counter(r["domain"] for r in pool)
    assert set(domains) == set(DOMAINS) and len(domains) >= 5
    assert domains.most_common()[0][1] > 5 * domains.most_common()[-1][1]
    styles = Counter(r["source"].split("/")[1] for r in pool)
    assert {"plain", "self_check", "wrong", "truncated"} <= set(styles)
    assert sum("double-check" in r["trace"] for r in pool) > 100
    assert sum(not r["trace_correct"] for r in pool) > 50


def test_random_is_seed_deterministic_and_differs_across_seeds(tmp_path: Path):
    a = _select(tmp_path, Strategy.random, 50, seed=1)["ids"]
    again = select(DataConfig(strategy=Strategy.random, size=50, seed=1), generate_pool(500, 0), set(), _words, _fresh(tmp_path))["ids"]
    other = _select(tmp_path, Strategy.random, 50, seed=2)["ids"]
    assert a == again and a != other and len(set(a)) == 50


def _fresh(tmp_path: Path) -> Path:
    out = tmp_path / f"fresh{len(list(tmp_path.iterdir()))}"
    out.mkdir()
    return out


def test_longest_picks_are_at_least_as_long_as_every_row_left_out(tmp_path: Path):
    pool = generate_pool(500, seed=0)
    manifest = _select(tmp_path, Strategy.longest, 40, seed=0, pool=pool)
    chosen = set(manifest["ids"])
    picked = [len(r["trace"].split()) for r in pool if r["id"] in chosen]
    left = [len(r["trace"].split()) for r in pool if r["id"] not in chosen]
    assert min(picked) >= max(left)
    rows = [json.loads(line) for line in open(tmp_path / "longest-40-0" / "selection.jsonl")]
    assert [r["id"] for r in rows] == manifest["ids"] and all(r["trace_tokens"] > 0 for r in rows)


def test_benchmark_questions_never_reach_a_selection(tmp_path: Path):
    benchmark = {row["question"] for row in load_benchmark("embedded")}
    pool = generate_pool(2000, seed=0)
    overlap = sum(r["question"] in benchmark for r in pool)
    assert overlap > 0, "the embedded pool and benchmark should overlap, so decontamination has work"
    manifest = _select(tmp_path, Strategy.random, len(pool) - overlap, seed=0, pool=pool, exclude=benchmark)
    assert manifest["decontaminated"] == overlap
    chosen = set(manifest["ids"])
    assert not any(r["question"] in benchmark for r in pool if r["id"] in chosen)


def test_size_larger_than_pool_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"data.size=600 exceeds the 500 pool rows"):
        _select(tmp_path, Strategy.random, 600, seed=0)


def test_local_pool_file_needs_the_schema_columns(tmp_path: Path):
    path = tmp_path / "pool.jsonl"
    path.write_text(json.dumps({"id": "1", "question": "q", "answer": "1"}) + "\n")
    with pytest.raises(ConfigError, match="no column 'trace'"):
        load_pool(PoolConfig(name="mine", source=str(path)))
