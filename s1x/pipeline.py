"""One experiment cell: select -> train -> evaluate, each through the content-addressed store."""
from __future__ import annotations

import json
import logging
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from s1x.benchmarks import load_benchmark
from s1x.config import BudgetMode, Config, TrainMethod
from s1x.evaluate import evaluate
from s1x.models import load_tokenizer, resolve_model_path
from s1x.pool import load_pool
from s1x.select import select
from s1x.store import Store
from s1x.train import train

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
    if cfg.budget.mode is BudgetMode.min:
        determining["extend"] = cfg.extend.string
    return determining


def run_cell(cfg: Config, run_dir: Path, overrides: list[str], choices: dict[str, str]) -> dict:
    """Run every stage of one cell and write run_dir/cell.json (status, stage keys, metrics)."""
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
    return cell


def _run_stages(cfg: Config, cell: dict) -> None:
    store, stages = Store(cfg.store_dir), cell["stages"]
    base_path = resolve_model_path(cfg.model, cfg.cache_dir)
    benchmark_questions = {row["question"] for name in cfg.eval.benchmarks for row in load_benchmark(name)}

    def count_tokens(texts: list[str]) -> list[int]:
        return [len(ids) for ids in load_tokenizer(base_path)(texts, add_special_tokens=False)["input_ids"]]

    selection = _stage(
        store, "select", {"pool": cfg.pool, "data": cfg.data, "benchmarks": cfg.eval.benchmarks, "tokenizer": cfg.model.path},
        lambda out: select(cfg.data, load_pool(cfg.pool), benchmark_questions, count_tokens, out),
        f"{cfg.data.strategy.value} size={cfg.data.size} seed={cfg.data.seed}", stages,
    )
    if cfg.train.method is TrainMethod.none:
        model_path, model_key = base_path, "base"
    else:
        rows = [json.loads(line) for line in open(selection / "selection.jsonl")]
        checkpoint = _stage(
            store, "train", {"model": cfg.model, "selection": selection.name, "train": cfg.train},
            lambda out: train(cfg.train, cfg.model, base_path, rows, out),
            f"{cfg.train.method.value} on {len(rows)} examples", stages,
        )
        model_path, model_key = str(checkpoint), checkpoint.name
    results = _stage(
        store, "eval", eval_determining(cfg, model_key),
        lambda out: evaluate(cfg.eval, cfg.budget, cfg.extend, cfg.model, model_path, out),
        f"budget={cfg.budget.mode.value} extend={cfg.extend.name} on {','.join(cfg.eval.benchmarks)}", stages,
    )
    cell["metrics"] = json.loads((results / "metrics.json").read_text())["benchmarks"]
