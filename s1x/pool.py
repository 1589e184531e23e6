"""Pools of reasoning traces, loaded into s1x's row schema."""
from __future__ import annotations

import json
from pathlib import Path

from s1x.config import ConfigError, PoolConfig
from s1x.embedded import generate_pool

REQUIRED_COLUMNS = ("id", "question", "answer", "trace")


def load_pool(cfg: PoolConfig) -> list[dict]:
    if cfg.source == "embedded":
        return generate_pool(cfg.size, cfg.seed)
    with open(cfg.source) as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    if not rows:
        raise ConfigError(f"pool {cfg.name}: {cfg.source} has no rows")
    for column in REQUIRED_COLUMNS:
        if column not in rows[0]:
            raise ConfigError(f"pool {cfg.name}: {Path(cfg.source).name} has no column {column!r}")
    return rows
