"""One experiment cell: select -> train -> evaluate, each through the content-addressed store.

The stage modules that bring torch and transformers (about 3 s of imports) are imported where a
stage runs: a sweep's planning process uses this module's keys and cell records only, and starts
its first job that much sooner (benchmarks/sweep_planning.py).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

from s1x.evaluate.benchmarks import benchmark_fingerprints, benchmark_questions
from s1x.evaluate.modes import extends, keyed_budget
from s1x.evaluate.results import METRICS_FILE
from s1x.config import Config, DataConfig, DomainClassifier, Strategy, TrainMethod
from s1x.select.domains import KEYWORDS, classify_keywords, classify_with_model
from s1x.embedded import EMBEDDED_VERSION
from s1x.select.pool import EMBEDDED, load_pool
from s1x.select.stage import select
from s1x.slurm import ACTIVE, ended
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


# Eval fields that decide how outputs are computed, never what they are (eval.forcing: stream and rounds
# give the same records), so the store keys leave them out.
EVAL_HOW_ONLY = ("forcing",)
# Eval fields that say where benchmarks come from: the keys hold what they resolve to instead (a local file's
# content hash, not its path; s1x/evaluate/benchmarks.py).
BENCHMARK_SOURCES = ("benchmarks", "benchmark_specs", "benchmark_files")


def _keyed_eval(cfg: Config) -> dict[str, Any]:
    keyed = {f.name: getattr(cfg.eval, f.name) for f in dataclasses.fields(cfg.eval)
             if f.name not in EVAL_HOW_ONLY + BENCHMARK_SOURCES}
    if keyed["seeds"] == [0]:  # one evaluation at seed 0: what every evaluation was before eval.seeds
        del keyed["seeds"]
    return {**keyed, "benchmarks": benchmark_fingerprints(cfg.eval)}


def eval_determining(cfg: Config, model_key: str) -> dict[str, Any]:
    """What decides an evaluation's output; the extension string only matters where it is appended."""
    determining = {"model": cfg.model, "weights": model_key, "eval": _keyed_eval(cfg), "budget": keyed_budget(cfg.budget)}
    if extends(cfg.budget):
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


def _data_determining(data: DataConfig) -> dict[str, Any]:
    """The data config less what its strategy ignores: a sweep over an ignored key is one selection."""
    ignored = set()
    if data.strategy is Strategy.full:
        ignored |= {"size", "seed", "allow_smaller"}
    if data.strategy not in (Strategy.diverse, Strategy.s1k):
        ignored.add("domain_classifier")
    if data.strategy is not Strategy.s1k:
        ignored |= {"difficulty_models", "solved_at"}
    return {f.name: getattr(data, f.name) for f in dataclasses.fields(data) if f.name not in ignored}


def _embedded_pool(cfg: Config) -> dict[str, Any]:
    """The embedded generator's version, where its pool is used: its content is not in the config."""
    return {"embedded": EMBEDDED_VERSION} if any(s.path == EMBEDDED for s in cfg.pool.sources) else {}


def select_determining(cfg: Config) -> dict[str, Any]:
    determining = {"pool": cfg.pool, "files": _pool_fingerprint(cfg), "data": _data_determining(cfg.data),
                   "benchmarks": benchmark_fingerprints(cfg.eval), "tokenizer": cfg.model.path, **_embedded_pool(cfg)}
    if cfg.data.strategy is Strategy.s1k:
        determining["model"] = cfg.model  # without a pool signal or difficulty_models, the base model is scored
    if cfg.data.difficulty_models or cfg.data.domain_classifier is DomainClassifier.model:
        determining["model"], determining["eval"] = cfg.model, _keyed_eval(cfg)  # they evaluate or classify with it
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

    return _stage(
        store, "eval", eval_determining(cfg, model_key),
        lambda out: evaluate(cfg.eval, cfg.budget, cfg.extend, cfg.model, model_path, out),
        f"budget={cfg.budget.mode.value} extend={cfg.extend.name} on {','.join(cfg.eval.benchmarks)}", stages,
    )


def _add_metrics(cell: dict, results: Path) -> None:
    """The evaluation's typed results (s1x/evaluate/results.py) and curve metrics, into the cell record."""
    metrics = json.loads((results / METRICS_FILE).read_text())
    cell["results"], cell["scaling"] = metrics["results"], metrics.get("scaling", {})
    cell["budget_bounds"] = metrics.get("budget_bounds")  # absent from evaluations stored before it was recorded


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
    _add_metrics(cell, _evaluate(cfg, store, model_path, model_key, stages))


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
        raise RuntimeError(f"{stage}: planned as key {key}, but the config now gives {keys.get(stage)}: "
                           "an input changed since the sweep was planned; submit the sweep again")
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


# A SLURM sweep's cells are records of their stage keys, written when the sweep is planned; what
# happened to each is read later from the store and the stages' jobs (cell_outcome).

def cell_record(overrides: list[str], choices: dict[str, str], keys: dict[str, Optional[str]],
                jobs: dict[str, Optional[str]], computes: dict[str, bool], store_dir: str) -> dict:
    """A planned cell: its stage keys, the job of each stage (None: in the store already), and whether
    this cell's job computes the stage (False: reused from the store or from another cell's job)."""
    return {"overrides": overrides, "choices": choices, "status": "planned", "keys": keys, "jobs": jobs,
            "computes": computes, "store_dir": str(Path(store_dir).resolve()), "stages": {}}


def _stage_outcome(store: Store, stage: str, key: str, job: Optional[str], queue: dict[str, str]) -> tuple[str, str]:
    """(state, error) of one stage: done, failed, running, pending or missing."""
    if store.is_done(stage, key):
        return "done", ""
    record = store.job_record(stage, key) or {}
    job = record.get("job_id") or job
    where = f"{stage} job {job}" + (f" (log {record['log']})" if record.get("log") else "")
    if record.get("state") == "failed":
        return "failed", f"{where} failed:\n{record.get('error', '')}"
    state = queue.get(job or "", "")
    if state and not ended(state):
        return ACTIVE[state.split(" ")[0]], ""
    if state and not state.startswith("COMPLETED"):
        return "failed", f"{where} ended {state}\nSLURM: job {job} ended {state}"
    return "missing", ""


def cell_jobs(record: dict) -> set[str]:
    """The SLURM jobs a planned cell's outcome depends on: its stages' jobs, and any later job of the same keys."""
    store = Store(record["store_dir"])
    later = (store.job_record(stage, key) or {} for stage, key in record["keys"].items() if key)
    return {j for j in record["jobs"].values() if j} | {r["job_id"] for r in later if r.get("job_id")}


def cell_outcome(record: dict, queue: dict[str, str]) -> dict:
    """A planned cell's outcome from the store and its stages' jobs (`queue`: job id -> SLURM state).

    The first stage that failed gives the cell its error; a cell is done when every stage is in the store.
    """
    store, cell = Store(record["store_dir"]), {**record, "stages": {}}
    states = []
    for stage, key in record["keys"].items():
        if key is None:
            continue
        state, error = _stage_outcome(store, stage, key, record["jobs"].get(stage), queue)
        states.append(state)
        if state == "done":
            job = store.job_record(stage, key) or {}
            computes = record["computes"].get(stage, False)
            cell["stages"][stage] = {"key": key, "path": str(store.path(stage, key)), "reused": not computes,
                                     "seconds": job.get("seconds", 0.0) if computes else 0.0}
        elif state == "failed" and "error" not in cell:
            cell["error"], cell["failed_stage"] = error, stage
    cell["status"] = next((s for s in ("failed", "running", "pending", "missing") if s in states), "done")
    if cell["status"] == "done":
        _add_metrics(cell, store.path("eval", record["keys"]["eval"]))
    return cell


def stage_dir(cell_dir: Path, stage: str) -> Path:
    """Where a cell's stage output lives: the path its run recorded, or for a cell planned as a SLURM job graph
    its key in the store; FileNotFoundError where the cell has none (train=none, or the stage never ran)."""
    cell = json.loads((Path(cell_dir) / CELL_FILE).read_text())
    if "path" in cell.get("stages", {}).get(stage, {}):
        return Path(cell["stages"][stage]["path"])
    if cell.get("keys", {}).get(stage):
        return Store(cell["store_dir"]).path(stage, cell["keys"][stage])
    raise FileNotFoundError(f"{cell_dir}: its cell.json names no {stage} output (status {cell.get('status')})")
