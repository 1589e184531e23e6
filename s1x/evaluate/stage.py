"""The evaluate stage: budget-forced generation on each benchmark, graded, with per-sample records and metrics."""
from __future__ import annotations

import itertools
import json
import logging
import platform
import statistics
from importlib.metadata import version
from pathlib import Path
from typing import Optional

from s1x.config import BudgetConfig, EngineName, EvalConfig, ExtendConfig, Forcing, ModelConfig
from s1x.evaluate.benchmarks import benchmark
from s1x.evaluate.engines.loading import load_engine
from s1x.evaluate.generation import evaluate_curve, evaluate_rows
from s1x.evaluate.metrics import BudgetRun, majority_voting, scaling_metrics
from s1x.evaluate.journal import Journal
from s1x.evaluate.modes import MODES
from s1x.evaluate.policy import forcing_policy
from s1x.evaluate.records import RECORDS_DIR, summarize, write_records
from s1x.evaluate.results import METRICS_FILE, Method, Point, Result

log = logging.getLogger("s1x")


def _versions(engine: EngineName) -> dict[str, str]:
    versions = {p: version(p) for p in ("torch", "transformers", "math-verify")}
    if engine is EngineName.vllm:
        import vllm

        versions["vllm"] = vllm.__version__
    return versions


def _point_results(name: str, point: Optional[Point], records: list[dict], path: str, eval_cfg: EvalConfig,
                   budget: BudgetConfig) -> list[Result]:
    """One benchmark's results at one point: every sample on its own (with eval.seeds, each seed's accuracy's mean
    and standard deviation too), and where questions have several samples, majority voting over the first 1, 2,
    4, ... of them (the parallel-scaling baseline) and the mode's own vote, where it has one."""
    spread = {}
    if len(eval_cfg.seeds) > 1:
        per_seed = [statistics.fmean(r["correct"] for r in records if r["seed"] == seed) for seed in eval_cfg.seeds]
        spread = {"accuracy_seed_mean": statistics.fmean(per_seed), "accuracy_seed_std": statistics.stdev(per_seed)}
    results = [Result(name, point, Method.single, eval_cfg.samples, path, **summarize(records), **spread)]
    if eval_cfg.samples > 1:
        questions = len({r["id"] for r in records})
        results += [Result(name, point, Method.majority, int(votes), path, questions, vote["accuracy"],
                           vote["thinking_tokens"]) for votes, vote in majority_voting(records).items()]
        if MODES[budget.mode].vote:
            vote = MODES[budget.mode].vote(records)
            results.append(Result(name, point, Method.vote, eval_cfg.samples, path, questions, vote["accuracy"],
                                  vote["thinking_tokens"]))
    return results


def evaluate(eval_cfg: EvalConfig, budget: BudgetConfig, extend: ExtendConfig, model_cfg: ModelConfig,
             model_path: str, out_dir: Path, progress: Optional[Path] = None) -> dict:
    """Write per-sample records (records/<i>.jsonl, one file per benchmark and curve point) and metrics.json
    (typed results, s1x/evaluate/results.py) into out_dir; return the metrics. With a progress directory, each
    finished sample is journaled there and a rerun generates only the samples its journal lacks."""
    mode = MODES[budget.mode]
    journal = Journal(progress) if progress else None
    if journal and journal.found:
        log.info("eval     resuming: %d finished samples in %s", len(journal.found), journal.path)
    fmt, engine = load_engine(model_cfg, model_path, eval_cfg)
    with engine:  # frees the model (and vLLM its KV cache and processes) before the next stage of the process
        policy = None if mode.points else forcing_policy(fmt, eval_cfg, budget, extend)
        metrics: dict = {"results": [], "budget_bounds": mode.bounds(budget), "provenance": {
            "engine": eval_cfg.engine.value, "forcing": getattr(engine, "forcing", Forcing.rounds).value,  # after any fallback
            "dtype": model_cfg.dtype.value, "system_prompt": model_cfg.system_prompt,
            "chat_template": fmt.tokenizer.chat_template, "think_start": model_cfg.think_start,
            "think_end": model_cfg.think_end, "answer_start": model_cfg.answer_start,
            "versions": _versions(eval_cfg.engine),
            "python": platform.python_version(),
        }}
        results, files = [], itertools.count()
        for name in eval_cfg.benchmarks:
            loaded = benchmark(name, eval_cfg)
            metrics["provenance"].setdefault("benchmarks", {})[name] = loaded.source  # hub revision, file sha256
            rows = loaded.rows[: eval_cfg.limit]
            by_point: dict[Optional[Point], list[dict]] = {}
            for index, seed in enumerate(eval_cfg.seeds):  # each seed's samples numbered after the seed before's
                label, base = name if len(eval_cfg.seeds) == 1 else f"{name} seed {seed}", seed << 20
                if mode.points:
                    curve = evaluate_curve(fmt, engine, eval_cfg, budget, extend, rows, label, base, journal)
                    found = {point: curve[point.label] for point in mode.points(budget)}
                else:
                    found = {None: evaluate_rows(fmt, engine, policy, rows, label, budget, eval_cfg.samples, base, journal)}
                for point, records in found.items():
                    for record in records:
                        record["seed"], record["sample"] = seed, record["sample"] + index * eval_cfg.samples
                    by_point.setdefault(point, []).extend(records)
            for point, records in by_point.items():
                path = f"{RECORDS_DIR}/{next(files)}.jsonl"
                write_records(out_dir / path, records)
                results += _point_results(name, point, records, path, eval_cfg, budget)
            if mode.points:
                metrics.setdefault("scaling", {})[name] = scaling_metrics(
                    [BudgetRun(r.mean_thinking_tokens, r.accuracy, None, r.point.cap) for r in results
                     if r.benchmark == name and r.method is Method.single])
        metrics["results"] = [result.to_dict() for result in results]
        (out_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    return metrics
