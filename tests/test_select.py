"""Selection on real pools: ../shared/data/pool stands in for s1K / the 59K pool (no copy exists offline)."""
from __future__ import annotations

import collections
import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from s1x.evaluate.benchmarks import builtin_spec, load_benchmark
from s1x.config import ConfigError, DataConfig, PoolConfig, PoolSource, Strategy
from s1x.select.domains import classify_keywords
from s1x.embedded import DOMAINS, generate_pool
from s1x.models import load_tokenizer
from s1x.select.pool import load_pool
from s1x.select.quality import RULES, quality_filter
from s1x.select.stage import select
from s1x.select.tokens import cached_token_counts
from tests.conftest import ROOT

SHARED = ROOT.parent / "shared" / "data"
SOURCES = [("math_test.jsonl", "math"), ("olympiadbench.jsonl", "olympiadbench"), ("minerva_math.jsonl", "minerva"),
           ("aqua.jsonl", "aqua"), ("college_math.jsonl", "college_math"), ("math_cot_100.jsonl", "math_cot")]


@pytest.fixture(scope="module")
def shared_pool() -> list[dict]:
    return load_pool(PoolConfig(name="shared", sources=[PoolSource(path=str(SHARED / "pool" / f), adapter=a) for f, a in SOURCES]))


@pytest.fixture(scope="module")
def math500() -> list[str]:
    return [r["question"] for r in load_benchmark("math500", builtin_spec("math500", str(SHARED / "math500" / "test.jsonl"))).rows]


@pytest.fixture(scope="module")
def count_tokens(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    cache = tmp_path_factory.mktemp("tokens") / "counts.sqlite"
    return lambda texts: cached_token_counts(texts, lambda b: tokenizer(b, add_special_tokens=False)["input_ids"], cache)


def _labels(rows: list[dict]) -> list[str]:
    unlabeled = [r["question"] for r in rows if not r.get("domain")]
    guesses = iter(classify_keywords(unlabeled))
    return [r.get("domain") or next(guesses) for r in rows]


def _run(tmp_path: Path, pool, count_tokens, strategy: Strategy, size: int, seed: int = 0, benchmarks=None, **data) -> tuple[dict, Path]:
    out = tmp_path / f"{strategy.value}-{size}-{seed}-{len(list(tmp_path.iterdir()))}"
    out.mkdir()
    cfg = DataConfig(strategy=strategy, size=size, seed=seed, **data)
    return select(cfg, pool, "test-pool", benchmarks or {}, count_tokens, _labels, lambda rows: None, out), out


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in open(out / "selection.jsonl")]


def test_adapters_read_every_shared_schema(shared_pool):
    by_source = collections.Counter(r["source"] for r in shared_pool)
    assert by_source == {"math": 4353, "college_math": 2818, "olympiadbench": 675, "minerva_math": 272, "aqua": 254, "math_cot": 100}
    assert len({r["id"] for r in shared_pool}) == len(shared_pool)
    minerva = [r for r in shared_pool if r["source"] == "minerva_math"]
    assert minerva[0]["answer"] == "1.6" and minerva[0]["domain"].startswith("Introduction to Astronomy")
    cot = [r for r in shared_pool if r["source"] == "math_cot"]
    assert sum(r["base_correct"] for r in cot) * 8 == 728  # 728 of 800 sampled traces were right
    assert all(r["trace"] is None for r in shared_pool if r["source"] == "college_math")


def test_math500_questions_never_reach_a_selection(tmp_path, shared_pool, math500, count_tokens):
    manifest, out = _run(tmp_path, shared_pool, count_tokens, Strategy.full, 1, benchmarks={"math500": math500})
    assert manifest["filters"]["decontamination"]["math500"] >= 428
    normalised = {" ".join(q.split()) for q in math500}
    assert not any(" ".join(r["question"].split()) in normalised for r in _rows(out))


def test_random_is_seed_deterministic_byte_for_byte_and_differs_across_seeds(tmp_path, shared_pool, count_tokens):
    _, first = _run(tmp_path, shared_pool, count_tokens, Strategy.random, 200, seed=1)
    _, again = _run(tmp_path, shared_pool, count_tokens, Strategy.random, 200, seed=1)
    _, other = _run(tmp_path, shared_pool, count_tokens, Strategy.random, 200, seed=2)
    assert (first / "selection.jsonl").read_bytes() == (again / "selection.jsonl").read_bytes()
    assert [r["id"] for r in _rows(first)] != [r["id"] for r in _rows(other)]


def test_longest_picks_are_at_least_as_long_as_every_row_left_out(tmp_path, shared_pool, count_tokens):
    manifest, out = _run(tmp_path, shared_pool, count_tokens, Strategy.longest, 300)
    chosen = set(manifest["ids"])
    lengths = dict(zip((r["id"] for r in shared_pool), count_tokens([str(r.get("trace") or "") for r in shared_pool])))
    assert min(lengths[i] for i in chosen) >= max(n for i, n in lengths.items() if i not in chosen)
    assert [r["trace_tokens"] for r in _rows(out)] == [lengths[i] for i in manifest["ids"]]


def test_diverse_is_within_one_of_uniform_where_domains_have_enough_rows(tmp_path, shared_pool, count_tokens):
    manifest, out = _run(tmp_path, shared_pool, count_tokens, Strategy.diverse, 400)
    available = collections.Counter(_labels(shared_pool))
    counts = collections.Counter(r["domain"] for r in _rows(out))
    assert sum(counts.values()) == 400
    exhausted = [d for d in available if counts[d] == available[d]]
    others = [d for d in available if d not in exhausted]
    assert others, "some domain should have more rows than its share"
    assert max(counts[d] for d in others) - min(counts[d] for d in others) <= 1
    assert all(counts[d] >= available[e] for d in others for e in exhausted)


def test_s1k_passes_its_own_rules_and_covers_at_least_the_domains_of_random(tmp_path, shared_pool, count_tokens):
    size = 60
    manifest, out = _run(tmp_path, shared_pool, count_tokens, Strategy.s1k, size, allow_smaller=True)
    rows = _rows(out)
    kept, dropped = quality_filter(rows)
    assert len(kept) == len(rows) and not any(dropped.values())
    assert all(r.get("base_correct") is None or r["base_correct"] < 0.5 for r in rows)
    assert manifest["filters"]["quality"]["missing_trace"] >= 2818  # college math has no traces
    assert manifest["filters"]["difficulty"]["solved_by_base_models"] > 0
    random_manifest, _ = _run(tmp_path, shared_pool, count_tokens, Strategy.random, len(rows))
    assert len(manifest["domains"]) >= len(random_manifest["domains"])


def test_s1k_prefers_longer_traces_within_a_domain(tmp_path, count_tokens):
    pool = generate_pool(2000, seed=0)
    for row in pool:
        row["base_correct"] = 0.0
    s1k, _ = _run(tmp_path, pool, count_tokens, Strategy.s1k, 60)
    diverse, _ = _run(tmp_path, pool, count_tokens, Strategy.diverse, 60)
    assert s1k["trace_tokens"]["mean"] > 1.3 * diverse["trace_tokens"]["mean"]
    assert {domain.split("/")[0] for domain in s1k["domains"]} == set(DOMAINS)  # a domain: a kind of chain and its length


def test_quality_rules_catch_each_fault():
    good = {"question": "What is 2+2?", "answer": "4", "trace": "Two plus two makes four, so the answer is 4."}
    faults = {
        "missing_trace": {"trace": ""}, "missing_answer": {"answer": None},
        "api_error": {"trace": "Error code: 429 - rate limit reached. The answer is 4"},
        "figure_reference": {"question": "In the figure below, what is 2+2?"},
        "unbalanced_braces": {"question": "What is $\\frac{2}{2+2?"},
        "replacement_character": {"trace": "Two plus two \ufffd is 4 indeed, clearly."},
        "answer_not_in_trace": {"trace": "Two plus two makes five, so the answer is 5."},
    }
    assert set(faults) == set(RULES)
    for rule, change in faults.items():
        _, counts = quality_filter([good, {**good, **change}])
        assert counts[rule] == 1 and sum(counts.values()) == 1, rule


def test_exports_open_as_parquet_csv_and_sqlite(tmp_path, shared_pool, count_tokens):
    manifest, out = _run(tmp_path, shared_pool, count_tokens, Strategy.random, 50)
    assert list(pd.read_parquet(out / "selection.parquet")["id"]) == manifest["ids"]
    assert list(pd.read_csv(out / "selection.csv")["id"].astype(str)) == manifest["ids"]
    with sqlite3.connect(out / "selection.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM selection").fetchone()[0] == 50
    assert (out / "trace_tokens.png").stat().st_size > 1000
    assert sum(manifest["domains"].values()) == 50 and manifest["trace_tokens"]["max"] >= manifest["trace_tokens"]["median"]


def test_size_beyond_what_survives_names_the_counts(tmp_path, shared_pool, count_tokens):
    with pytest.raises(ConfigError, match=r"data.size=5000 exceeds the \d+ rows of pool test-pool left after filtering \(decontamination.*quality: missing_trace=\d+"):
        _run(tmp_path, shared_pool, count_tokens, Strategy.s1k, 5000)
    manifest, _ = _run(tmp_path, shared_pool, count_tokens, Strategy.s1k, 5000, allow_smaller=True)
    assert 0 < manifest["size"] < 5000 and manifest["requested_size"] == 5000


def test_bad_pool_files_name_the_pool_and_column(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    partial = tmp_path / "partial.jsonl"
    partial.write_text(json.dumps({"problem": "q", "solution": "s"}) + "\n")
    with pytest.raises(ConfigError, match="pool mine: .*empty.jsonl has no rows"):
        load_pool(PoolConfig(name="mine", sources=[PoolSource(path=str(empty))]))
    with pytest.raises(ConfigError, match=r"pool mine: .*partial.jsonl has no column 'answer'"):
        load_pool(PoolConfig(name="mine", sources=[PoolSource(path=str(partial), adapter="math")]))


def test_token_counts_are_cached(tmp_path, tiny_model_dir):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    calls = []

    def tokenize(batch):
        calls.append(len(batch))
        return tokenizer(batch, add_special_tokens=False)["input_ids"]

    texts = [r["trace"] for r in generate_pool(300, 0)]
    first = cached_token_counts(texts, tokenize, tmp_path / "c.sqlite")
    second = cached_token_counts(texts, tokenize, tmp_path / "c.sqlite")
    assert first == second == [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    assert sum(calls) == len(set(texts))


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_local_pool_files_load_in_every_format(tmp_path, suffix):
    rows = [{k: r[k] for k in ("id", "question", "answer", "trace", "domain")} for r in generate_pool(30, 0)]
    frame, path = pd.DataFrame(rows), tmp_path / f"pool{suffix}"
    {".parquet": lambda: frame.to_parquet(path), ".csv": lambda: frame.to_csv(path, index=False),
     ".jsonl": lambda: frame.to_json(path, orient="records", lines=True)}[suffix]()
    loaded = load_pool(PoolConfig(name="mine", sources=[PoolSource(path=str(path))]))
    assert [(r["id"], r["question"], str(r["answer"])) for r in loaded] == [(r["id"], r["question"], r["answer"]) for r in rows]


def test_model_classifier_asks_through_the_engine(tiny_model_dir):
    from s1x.chat import S1Format
    from s1x.config import ModelConfig
    from s1x.select.domains import classification_prompt, classify_with_model
    from s1x.evaluate.engines.hf import HFEngine
    from s1x.models import load_model

    tokenizer = load_tokenizer(str(tiny_model_dir))
    fmt = S1Format(tokenizer, ModelConfig(name="tiny", path=str(tiny_model_dir)))
    engine = HFEngine(load_model(str(tiny_model_dir), "float32"), tokenizer, batch_size=4, temperature=0.0)
    domains = ["algebra", "geometry", "probability"]
    questions = ["Solve for x: 2x = 4.", "What is the area of a unit square?"]
    seen = []

    def recording(requests):
        seen.extend(requests)
        return engine.generate(requests)

    labels = classify_with_model(questions, domains, lambda t: fmt.encode(fmt.chat_prefix(t)), recording, tokenizer.decode)
    assert len(labels) == 2 and set(labels) <= set(domains) | {"other"}
    assert tokenizer.decode(seen[0].prompt_ids).endswith(classification_prompt(questions[0], domains) + "<|im_end|>\n<|im_start|>assistant\n")
    scripted = classify_with_model(questions, domains, lambda t: [0], lambda rs: [tokenizer.encode(" 2")] + [tokenizer.encode("none")] * (len(rs) - 1), tokenizer.decode)
    assert scripted == ["geometry", "other"]


def test_exports_keep_columns_that_mix_numbers_and_text(tmp_path, count_tokens):
    pool = generate_pool(20, 0)
    for i, row in enumerate(pool):
        row["level"] = i if i % 2 else f"Level {i}"
    manifest, out = _run(tmp_path, pool, count_tokens, Strategy.random, 10)
    frame = pd.read_parquet(out / "selection.parquet")
    assert sorted(frame["level"]) == sorted(str(r["level"]) for r in pool if r["id"] in manifest["ids"])
