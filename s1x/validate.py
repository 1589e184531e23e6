"""The checks every entry point runs on a composed config before any stage starts or job is submitted.

`s1x.config` stays a leaf (no stage code, no torch); the checks that need a stage's registry (adapter
and benchmark names, then the pool files those adapters read) are here, so a typo fails with the key's name while planning, not inside a job.
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from s1x.config import Config, ConfigError, is_local, to_config
from s1x.evaluate.benchmarks import BENCHMARKS
from s1x.select.adapters import ADAPTERS


def validated(cfg: DictConfig) -> Config:
    """The typed config (ConfigError names the key of the first bad value)."""
    typed = to_config(cfg)
    for source in typed.pool.sources:
        if source.adapter not in ADAPTERS:
            raise ConfigError(f"pool.sources: unknown adapter {source.adapter!r}; known: {sorted(ADAPTERS)}")
        if is_local(source.path) and not Path(source.path).is_file():
            raise ConfigError(f"pool.sources: no such file {source.path}")
    for name in typed.eval.benchmarks:
        if name not in BENCHMARKS:
            raise ConfigError(f"eval.benchmarks: unknown benchmark {name!r}; known: {sorted(BENCHMARKS)}")
    return typed
