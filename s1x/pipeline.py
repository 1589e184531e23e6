"""One experiment cell: select -> train -> evaluate, each through the content-addressed store.

The stage modules that bring torch and transformers (about 3 s of imports) are imported where a
stage runs: a sweep's planning process uses this module's keys and cell records only, and starts
its first job that much sooner (benchmarks/sweep_planning.py).
"""
from __future__ import annotations

import json
import logging
import os
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

from s1x.evaluate.benchmarks import load_benchmark
from s1x.config import BudgetMode, Config, DomainClassifier, TrainMethod
from s1x.select.domains import KEYWORDS, classify_keywords, classify_with_model
from s1x.select.pool import load_pool
from s1x.select.stage import select
from s1x.store import Store, stage_key
from s1x.select.tokens import cached_token_counts
from s1x.tracking import log_cell

log = logging.getLogger("s1x")
CELL_FILE = "cell.json"


def _stage(store: Store, stage: str, determining: dict[str, Any], compute: Callable[[Path], Any],
           summary: str, record: dict) -> Path:
    start = time.perf_counter()
    path, reused = store.get_or_compute(stage, determining, compute)
    seconds = time.perf_counter() - start
    log.info("%-8s %-6s %6.1fs  %s  %s", stage, "reused" if reused else "done", seconds, summary, path)
    record[stage] = {"key": path.name, "path": str(path), "reused": reused, "seconds": round(seconds, 3)}
    return path


def eval_determining(cfg: Config, model_key: str) -> dict[str, Any]:
    """What decides an evaluation's output; the extension string only matters where it is appended."""
    determining = {"model": cfg.model, "weights": model_key, "eval": cfg.eval, "budget": cfg.budget}
    if cfg.budget.mode in (BudgetMode.min, BudgetMode.ignore):
        determining["extend"] = cfg.extend.string
    return determining


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


def _pool_fingerprint(cfg: Config) -> list:
    """Local pool files enter the selection key with their size and mtime, so an edited file is reselected."""
    stats = [os.stat(s.path) if Path(s.path).is_file() else None for s in cfg.pool.sources]
    return [(s.path, st and st.st_size, st and st.st_mtime_ns) for s, st in zip(cfg.pool.sources, stats)]


def select_determining(cfg: Config) -> dict[str, Any]:
    determining = {"pool": cfg.pool, "files": _pool_fingerprint(cfg), "data": cfg.data,
                   "benchmarks": cfg.eval.benchmarks, "benchmark_files": cfg.eval.benchmark_files,
                   "tokenizer": cfg.model.path}
    if cfg.data.difficulty_models or cfg.data.domain_classifier is DomainClassifier.model:
        determining["model"], determining["eval"] = cfg.model, cfg.eval  # they evaluate or classify with it
    return determining


def train_determining(cfg: Config, selection_key: str) -> dict[str, Any]:
    # How training is spread (cfg.distributed) does not decide the weights, so it is not in the key.
    return {"model": cfg.model, "selection": selection_key, "train": cfg.train}


def planned_keys(cfg: Config) -> dict[str, Optional[str]]:
    """Every stage key of a cell, from its config alone: what a launcher plans a sweep with."""
    selection = stage_key("select", select_determining(cfg))
    trained = None if cfg.train.method is TrainMethod.none else stage_key("train", train_determining(cfg, selection))
    return {"select": selection, "train": trained, "eval": stage_key("eval", eval_determining(cfg, trained or "base"))}


def _select(cfg: Config, store: Store, base_path: str, stages: dict) -> Path:
    from s1x.select.difficulty import add_base_correctness
    from s1x.evaluate.stage import load_engine
    from s1x.models import load_tokenizer

    files = cfg.eval.benchmark_files
    benchmarks = {name: [row["question"] for row in load_benchmark(name, files.get(name))] for name in cfg.eval.benchmarks}
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
            labels = classify_with_model([r["question"] for r in unlabeled], sorted(KEYWORDS),
                                         lambda text: fmt.encode(fmt.chat_prefix(text)), engine.generate, fmt.tokenizer.decode)
        by_id = dict(zip((r["id"] for r in unlabeled), labels))
        return [r.get("domain") or by_id[r["id"]] for r in rows]

    def add_difficulty(rows: list[dict]) -> None:
        add_base_correctness(rows, cfg.data.difficulty_models, cfg.model, cfg.eval, store, cfg.cache_dir)

    return _stage(
        store, "select", select_determining(cfg),
        lambda out: select(cfg.data, load_pool(cfg.pool), cfg.pool.name, benchmarks, count_tokens, label_domains,
                           add_difficulty if cfg.data.difficulty_models else None, out),
        f"{cfg.data.strategy.value} size={cfg.data.size} seed={cfg.data.seed} from {cfg.pool.name}", stages,
    )


def _run_stages(cfg: Config, cell: dict) -> None:
    from s1x.evaluate.stage import evaluate
    from s1x.models import resolve_model_path
    from s1x.train.stage import train

    store, stages = Store(cfg.store_dir), cell["stages"]
    base_path = resolve_model_path(cfg.model, cfg.cache_dir)
    selection = _select(cfg, store, base_path, stages)
    if cfg.train.method is TrainMethod.none:
        model_path, model_key = base_path, "base"
    else:
        rows = [json.loads(line) for line in open(selection / "selection.jsonl")]
        determining = train_determining(cfg, selection.name)
        # Checkpoints live beside the store's temporary directory, which a rerun deletes: they outlive a kill.
        work_dir = store.path("train", f".{stage_key('train', determining)}.checkpoints")
        checkpoint = _stage(
            store, "train", determining,
            lambda out: train(cfg.train, cfg.model, cfg.distributed, base_path, rows, out, work_dir),
            f"{cfg.train.method.value} on {len(rows)} examples", stages,
        )
        model_path, model_key = str(checkpoint), checkpoint.name
    results = _stage(
        store, "eval", eval_determining(cfg, model_key),
        lambda out: evaluate(cfg.eval, cfg.budget, cfg.extend, cfg.model, model_path, out),
        f"budget={cfg.budget.mode.value} extend={cfg.extend.name} on {','.join(cfg.eval.benchmarks)}", stages,
    )
    metrics = json.loads((results / "metrics.json").read_text())
    cell["metrics"], cell["scaling"] = metrics["benchmarks"], metrics.get("scaling", {})
    cell["budget_bounds"] = metrics.get("budget_bounds")  # absent from evaluations stored before it was recorded
