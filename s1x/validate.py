"""The checks every entry point runs on composed configs before any stage starts or job is submitted.

`s1x.config` stays a leaf (no stage code, no torch); the checks that need a stage's registry (adapter
and benchmark names, then the pool files those adapters read and the local benchmarks' rows) are here, so a typo fails with the key's
name while planning, not inside a job. A sweep is checked as a whole too (`check_sweep`): a swept key
whose values cannot change any stage's output would only duplicate cells, so it is an error.
"""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Sequence

from omegaconf import DictConfig

from s1x.config import BudgetConfig, Config, ConfigError, is_local, to_config
from s1x.evaluate.benchmarks import benchmark, benchmark_spec
from s1x.evaluate.modes import check_budget, unread_reason
from s1x.keys import planned_keys
from s1x.select.adapters import ADAPTERS
from s1x.select.preflight import check_pool_rows
from s1x.store import Store

# Why a key can be inert, where the reason is not obvious from the keys alone (a budget mode's: its module).
INERT_REASONS = {
    "data.seed": "data=full takes every row, in the pool's order",
    "data.size": "data=full takes every row",
    "distributed": "how training is spread does not change the trained weights",
    "logger": "where runs are recorded does not change them",
}


def validated(cfg: DictConfig) -> Config:
    """The typed config (ConfigError names the key of the first bad value)."""
    typed = to_config(cfg)
    check_budget(typed.budget, typed.eval)
    processes = typed.distributed.processes_per_node or 1
    if typed.train.global_batch_size % (typed.train.micro_batch_size * processes):
        raise ConfigError(f"train.global_batch_size ({typed.train.global_batch_size}) must be a multiple of "
                          f"train.micro_batch_size ({typed.train.micro_batch_size}) x distributed.processes_per_node "
                          f"({processes})")
    for key in ("store_dir", "cache_dir"):
        _check_writable(key, getattr(typed, key))
    for source in typed.pool.sources:
        if source.adapter not in ADAPTERS:
            raise ConfigError(f"pool.sources: unknown adapter {source.adapter!r}; known: {sorted(ADAPTERS)}")
        if is_local(source.path) and not Path(source.path).is_file():
            raise ConfigError(f"pool.sources: no such file {source.path}")
    for name in typed.eval.benchmarks:
        spec = benchmark_spec(name, typed.eval)
        spec.check(f"benchmark {name}")
        if spec.hub_id is None:  # local and generated benchmarks load here, so their data errors come before any job
            benchmark(name, typed.eval)
    return typed


def _check_writable(key: str, directory: str) -> None:
    """The directory, or the nearest one above it that exists, takes new files (a read-only mount does not)."""
    existing = Path(directory).resolve()
    while not existing.exists():
        existing = existing.parent
    if not (existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)):
        raise ConfigError(f"{key}={directory}: {existing} is not a writable directory")


def _override_values(overrides: Sequence[str]) -> dict[str, str]:
    return {key.lstrip("+~"): value for key, _, value in (o.partition("=") for o in overrides)}


def inert_axes(cells: Sequence[tuple[Sequence[str], Config]]) -> dict[str, str]:
    """Swept keys whose values leave every stage key of some cells unchanged -> why, in words.

    Cells that differ only in one swept key are compared: if two of them, with different values of that
    key, have the same select, train and eval keys, the key decided nothing there (the store keys hold
    exactly what determines each stage's output)."""
    given = [_override_values(overrides) for overrides, _ in cells]
    swept = [key for key in dict.fromkeys(k for values in given for k in values)
             if len({values.get(key) for values in given}) > 1]
    keys = [tuple(planned_keys(cfg).values()) for _, cfg in cells]
    budgets = {id(values): cfg.budget for values, (_, cfg) in zip(given, cells)}
    found = {}
    for key in swept:
        groups: dict[tuple, dict[str, tuple]] = defaultdict(dict)
        budget_of: dict[tuple, BudgetConfig] = {}
        for values, stage_keys in zip(given, keys):
            rest = tuple(sorted((k, v) for k, v in values.items() if k != key))
            groups[rest][values.get(key)] = stage_keys
            budget_of[rest] = budgets[id(values)]
        for rest, by_value in groups.items():
            if len(by_value) > 1 and len(set(by_value.values())) < len(by_value):
                under = " ".join(f"{k}={v}" for k, v in rest) or "the defaults"
                same = ", ".join(f"{key}={v}" for v in by_value)
                reason = unread_reason(key, budget_of[rest]) or INERT_REASONS.get(key)
                if "budget=" not in under:
                    under += f" (budget={budget_of[rest].mode.value})"
                found[key] = f"under {under}, the cells {same} share every stage" + (
                    f": {reason}" if reason else "")
                break
    return found


def check_sweep(cells: Sequence[tuple[Sequence[str], Config]], allow_inert: bool) -> None:
    """Raise ConfigError naming each swept key that cannot change any stage's output, or the first selection
    its pool cannot give (checked once per selection not yet in the store)."""
    inert = inert_axes(cells)
    if inert and not allow_inert:
        lines = "\n".join(f"  {key}: {why}" for key, why in inert.items())
        raise ConfigError(f"sweep axis {', '.join(inert)} cannot change any result:\n{lines}\n"
                          "Remove the axis, change what makes it inert, or run anyway with "
                          "hydra.sweeper.allow_inert_axes=true")
    checked = set()
    for overrides, cfg in cells:
        key = planned_keys(cfg)["select"]
        if key in checked:
            continue
        checked.add(key)
        try:
            check_selection(cfg)
        except ConfigError as error:
            raise ConfigError(f"cell {' '.join(overrides) or '(defaults)'}: {error}") from None


def check_selection(cfg: Config) -> None:
    """ConfigError if the pool cannot give the selection (its file unreadable, a row incomplete, an id twice, too
    few rows after filtering); nothing to check where the selection is in the store already."""
    if not Store(cfg.store_dir).is_done("select", planned_keys(cfg)["select"]):
        check_pool_rows(cfg)
