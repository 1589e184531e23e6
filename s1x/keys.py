"""The store key of each stage of a cell, from its config alone: what decides the stage's output, and nothing else.

Light (no torch, no stage code): a sweep's planning process computes every cell's keys with it.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Optional

from s1x.config import Config, DataConfig, DomainClassifier, Strategy, TrainMethod
from s1x.embedded import EMBEDDED_VERSION
from s1x.evaluate.benchmarks import benchmark_fingerprints
from s1x.evaluate.modes import extends, keyed_budget
from s1x.select.pool import EMBEDDED
from s1x.store import stage_key


# Eval fields that decide how outputs are computed, never what they are (eval.forcing: stream and rounds
# give the same records), so the store keys leave them out.
EVAL_HOW_ONLY = ("forcing",)
# Eval fields that say where benchmarks come from: the keys hold what they resolve to instead (a local file's
# content hash, not its path; s1x/evaluate/benchmarks.py).
BENCHMARK_SOURCES = ("benchmarks", "benchmark_specs", "benchmark_files")


def keyed_eval(cfg: Config) -> dict[str, Any]:
    keyed = {f.name: getattr(cfg.eval, f.name) for f in dataclasses.fields(cfg.eval)
             if f.name not in EVAL_HOW_ONLY + BENCHMARK_SOURCES}
    if keyed["seeds"] == [0]:  # one evaluation at seed 0: what every evaluation was before eval.seeds
        del keyed["seeds"]
    return {**keyed, "benchmarks": benchmark_fingerprints(cfg.eval)}


def eval_determining(cfg: Config, model_key: str) -> dict[str, Any]:
    """What decides an evaluation's output; the extension string only matters where it is appended."""
    determining = {"model": cfg.model, "weights": model_key, "eval": keyed_eval(cfg), "budget": keyed_budget(cfg.budget)}
    if extends(cfg.budget):
        determining["extend"] = cfg.extend.string
    return determining


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
        determining["model"], determining["eval"] = cfg.model, keyed_eval(cfg)  # they evaluate or classify with it
    return determining


# Train fields that decide how the sums are computed, never what they are: not in the key.
TRAIN_HOW_ONLY = ("attention",)


def train_determining(cfg: Config, selection_key: str) -> dict[str, Any]:
    # How training is spread (cfg.distributed) does not decide the weights, so it is not in the key.
    train = {f.name: getattr(cfg.train, f.name) for f in dataclasses.fields(cfg.train) if f.name not in TRAIN_HOW_ONLY}
    return {"model": cfg.model, "selection": selection_key, "train": train}


def planned_keys(cfg: Config) -> dict[str, Optional[str]]:
    """Every stage key of a cell, from its config alone: what a launcher plans a sweep with."""
    selection = stage_key("select", select_determining(cfg))
    trained = None if cfg.train.method is TrainMethod.none else stage_key("train", train_determining(cfg, selection))
    return {"select": selection, "train": trained, "eval": stage_key("eval", eval_determining(cfg, trained or "base"))}
