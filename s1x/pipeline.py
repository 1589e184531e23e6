"""One experiment cell: select -> train -> evaluate, each through the content-addressed store.

Each stage's store key comes from s1x/keys.py, the cell's record from s1x/outcomes.py. The stage modules that
bring torch and transformers (about 3 s of imports) are imported where a stage runs, so the SLURM stage entry
(`run_stage`) starts its work as soon as it can.
"""
from __future__ import annotations

import json
import logging
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from s1x.evaluate.benchmarks import benchmark_questions
from s1x.config import Config, ConfigError, DomainClassifier, TrainMethod
from s1x.select.domains import KEYWORDS, classify_keywords, classify_with_model
from s1x.select.pool import load_pool
from s1x.select.stage import select
from s1x.store import Store, stage_key
from s1x.select.tokens import cached_token_counts
from s1x.tracking import log_cell
from s1x.keys import eval_determining, planned_keys, select_determining, train_determining
from s1x.outcomes import CELL_FILE, add_metrics

log = logging.getLogger("s1x")


def _stage(store: Store, stage: str, determining: dict[str, Any], compute: Callable[[Path], Any],
           summary: str, record: dict) -> Path:
    start = time.perf_counter()
    path, reused = store.get_or_compute(stage, determining, compute)
    seconds = time.perf_counter() - start
    log.info("%-8s %-6s %6.1fs  %s  %s", stage, "reused" if reused else "done", seconds, summary, path)
    record[stage] = {"key": path.name, "path": str(path), "reused": reused, "seconds": round(seconds, 3)}
    return path


def run_cell(cfg: Config, run_dir: Path, overrides: list[str], choices: dict[str, str], group: str) -> dict:
    """Run every stage of one cell and write run_dir/cell.json (status, stage keys, metrics).

    `group` names the sweep (or the single run) in the experiment tracker."""
    cell: dict[str, Any] = {"overrides": overrides, "choices": choices, "status": "running", "stages": {}}
    cell_file = run_dir / CELL_FILE
    cell_file.write_text(json.dumps(cell, indent=2))
    try:
        _run_stages(cfg, cell)
        cell["status"] = "done"
    except Exception:
        cell["status"] = "failed"
        cell["error"] = traceback.format_exc()
        raise
    finally:
        cell_file.write_text(json.dumps(cell, indent=2))
        log_cell(cfg, cell, run_dir, group)
    return cell


def record_failure(run_dir: Path, overrides: list[str], choices: dict[str, str]) -> None:
    """Mark a cell failed with the exception being handled, unless run_cell already did."""
    cell_file = run_dir / CELL_FILE
    if cell_file.exists() and json.loads(cell_file.read_text())["status"] == "failed":
        return
    cell = {"overrides": overrides, "choices": choices, "status": "failed", "stages": {}, "error": traceback.format_exc()}
    cell_file.write_text(json.dumps(cell, indent=2))


def _select(cfg: Config, store: Store, base_path: str, stages: dict) -> Path:
    from s1x.select.difficulty import add_base_correctness, score_without_thinking
    from s1x.evaluate.engines.loading import load_engine
    from s1x.models import load_tokenizer

    benchmarks = benchmark_questions(cfg.eval)
    tokenizer_file = store.root / "token_counts" / f"{stage_key('tokens', {'tokenizer': cfg.model.path})}.sqlite"

    def count_tokens(texts: list[str]) -> list[int]:
        tokenizer = load_tokenizer(base_path)
        return cached_token_counts(texts, lambda batch: tokenizer(batch, add_special_tokens=False)["input_ids"], tokenizer_file)

    def label_domains(rows: list[dict]) -> list[str]:
        unlabeled = [r for r in rows if not r.get("domain")]
        if cfg.data.domain_classifier is DomainClassifier.keyword or not unlabeled:
            labels = classify_keywords([r["question"] for r in unlabeled])
        else:
            fmt, engine = load_engine(cfg.model, base_path, cfg.eval)
            with engine:  # closed before the next engine of this process (difficulty scoring, evaluation)
                labels = classify_with_model([r["question"] for r in unlabeled], sorted(KEYWORDS),
                                             lambda text: fmt.encode(fmt.chat_prefix(text)), engine.generate,
                                             fmt.tokenizer.decode)
        by_id = dict(zip((r["id"] for r in unlabeled), labels))
        return [r.get("domain") or by_id[r["id"]] for r in rows]

    def add_difficulty(rows: list[dict]) -> None:
        if cfg.data.difficulty_models:
            add_base_correctness(rows, cfg.data.difficulty_models, cfg.model, cfg.eval, store, cfg.cache_dir)
        elif not any(row.get("base_correct") is not None for row in rows):
            score_without_thinking(rows, cfg.model, base_path, store)

    return _stage(
        store, "select", select_determining(cfg),
        lambda out: select(cfg.data, load_pool(cfg.pool), cfg.pool.name, benchmarks, count_tokens, label_domains,
                           add_difficulty, out),
        f"{cfg.data.strategy.value} size={cfg.data.size} seed={cfg.data.seed} from {cfg.pool.name}", stages,
    )


def _train(cfg: Config, store: Store, base_path: str, selection: Path, stages: dict) -> Path:
    from s1x.train.stage import train

    rows = [json.loads(line) for line in open(selection / "selection.jsonl")]
    determining = train_determining(cfg, selection.name)
    # Checkpoints live beside the store's temporary directory, which a rerun deletes: they outlive a kill.
    work_dir = store.path("train", f".{stage_key('train', determining)}.checkpoints")
    return _stage(
        store, "train", determining,
        lambda out: train(cfg.train, cfg.model, cfg.distributed, base_path, rows, out, work_dir),
        f"{cfg.train.method.value} on {len(rows)} examples", stages,
    )


def _evaluate(cfg: Config, store: Store, model_path: str, model_key: str, stages: dict) -> Path:
    from s1x.evaluate.stage import evaluate

    determining = eval_determining(cfg, model_key)
    progress = store.progress("eval", determining)  # a killed evaluation's finished samples, for its rerun
    return _stage(
        store, "eval", determining,
        lambda out: evaluate(cfg.eval, cfg.budget, cfg.extend, cfg.model, model_path, out, progress),
        f"budget={cfg.budget.mode.value} extend={cfg.extend.name} on {','.join(cfg.eval.benchmarks)}", stages,
    )


def _run_stages(cfg: Config, cell: dict) -> None:
    from s1x.models import resolve_model_path

    store, stages = Store(cfg.store_dir), cell["stages"]
    base_path = resolve_model_path(cfg.model, cfg.cache_dir)
    selection = _select(cfg, store, base_path, stages)
    if cfg.train.method is TrainMethod.none:
        model_path, model_key = base_path, "base"
    else:
        checkpoint = _train(cfg, store, base_path, selection, stages)
        model_path, model_key = str(checkpoint), checkpoint.name
    add_metrics(cell, _evaluate(cfg, store, model_path, model_key, stages))


def _stored_input(store: Store, stage: str, key: str) -> Path:
    path = store.path(stage, key)
    if not path.is_dir():
        raise RuntimeError(f"input {stage} {key} is not in the store {store.root}: the job that makes it failed or did not finish")
    return path


def run_stage(cfg: Config, stage: str, key: str) -> dict:
    """Compute one stage of a cell, its inputs already in the store: a job of a sweep's stage graph.

    `key` is what the plan computed; a config that now gives another key (a local pool file edited
    since planning) fails here rather than filling a key nothing waits for.
    """
    from s1x.models import resolve_model_path

    keys = planned_keys(cfg)
    if keys.get(stage) != key:
        raise ConfigError(f"{stage}: planned as key {key}, the config now gives {keys.get(stage)}: an input changed "
                          "since the sweep was planned; submit it again")
    store, stages = Store(cfg.store_dir), {}
    base_path = resolve_model_path(cfg.model, cfg.cache_dir)
    if stage == "select":
        _select(cfg, store, base_path, stages)
    elif stage == "train":
        _train(cfg, store, base_path, _stored_input(store, "select", keys["select"]), stages)
    else:
        model = str(_stored_input(store, "train", keys["train"])) if keys["train"] else base_path
        _evaluate(cfg, store, model, keys["train"] or "base", stages)
    return stages[stage]
