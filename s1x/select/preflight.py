"""The selection's data checks that can run while planning, before any cell starts or job is submitted.

Selecting for real needs token counts and, for s1k, a difficulty signal from a base model (a GPU job on
a cluster); what the pool alone decides is checked here: the pool loads, and decontamination and the
quality filter leave at least `data.size` rows. The difficulty filter can still leave fewer; the select
stage then fails with the same message.
"""
from __future__ import annotations

from s1x.config import Config, Strategy
from s1x.evaluate.benchmarks import benchmark_questions
from s1x.select.decontaminate import decontaminate
from s1x.select.pool import load_pool
from s1x.select.quality import quality_filter
from s1x.select.stage import selection_size


def check_pool_rows(cfg: Config) -> None:
    """Raise ConfigError (naming the pool, the size and each filter's count) if the pool cannot give the selection."""
    rows, removed = decontaminate(load_pool(cfg.pool), benchmark_questions(cfg.eval))
    filters = {"decontamination": removed}
    if cfg.data.strategy is Strategy.s1k:
        rows, filters["quality"] = quality_filter(rows)
    selection_size(cfg.data, len(rows), cfg.pool.name, filters)
