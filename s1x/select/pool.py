"""Pools of reasoning traces: hub datasets, local files or the embedded pool, in s1x's row schema.

Hub ids and local parquet/JSON(L)/CSV files both load through `datasets`, so the code path
that reads `simplescaling/s1K` on a cluster is the one tests run on local copies.
"""
from __future__ import annotations

import json
from pathlib import Path

from s1x.config import LOCAL_FORMATS, ConfigError, PoolConfig, PoolSource, first_line, is_local
from s1x.embedded import generate_pool
from s1x.select.adapters import ADAPTERS, REQUIRED

EMBEDDED = "embedded"


def _load_rows(pool_name: str, source: PoolSource) -> list[dict]:
    import datasets

    try:
        if not is_local(source.path):
            return datasets.load_dataset(source.path, split=source.split).to_list()
        if Path(source.path).stat().st_size == 0:
            return []  # datasets raises a bare StopIteration on an empty file
        return datasets.load_dataset(LOCAL_FORMATS.get(Path(source.path).suffix, "json"), data_files=source.path,
                                     split="train").to_list()
    except Exception as error:  # datasets' own errors name neither the pool nor the line
        raise ConfigError(f"pool {pool_name}: {_unreadable(source.path) or f'{source.path} cannot be read ({first_line(error)})'}") from None


def _unreadable(path: str) -> str:
    """Where a local JSON Lines file stops being JSON ('' when every line parses, or it is not JSON Lines)."""
    if not is_local(path) or Path(path).suffix != ".jsonl":  # a .json file may hold one document over many lines
        return ""
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        try:
            if line.strip():
                json.loads(line)
        except json.JSONDecodeError as error:
            return f"{path}:{number}: not JSON ({error.msg})"
    return ""


def load_source(pool_name: str, source: PoolSource) -> list[dict]:
    raw = _load_rows(pool_name, source)
    if not raw:
        raise ConfigError(f"pool {pool_name}: {source.path} has no rows")
    missing = [c for c in REQUIRED[source.adapter] if c not in raw[0]]
    if missing:
        raise ConfigError(f"pool {pool_name}: {source.path} has no column {missing[0]!r} "
                          f"(adapter {source.adapter!r} needs {list(REQUIRED[source.adapter])})")
    for number, raw_row in enumerate(raw, 1):
        if empty := next((c for c in REQUIRED[source.adapter] if raw_row.get(c) is None), None):
            raise ConfigError(f"pool {pool_name}: {source.path}: row {number} has no {empty!r}")
    stem = Path(source.path).stem if is_local(source.path) else source.path.replace("/", "_")
    rows = []
    for index, raw_row in enumerate(raw):
        row = ADAPTERS[source.adapter](raw_row)
        row["id"] = str(row.get("id") or f"{stem}-{index}")
        row.setdefault("source", stem)
        rows.append(row)
    return rows


def load_pool(cfg: PoolConfig) -> list[dict]:
    rows: list[dict] = []
    for source in cfg.sources:
        rows += generate_pool(cfg.size, cfg.seed) if source.path == EMBEDDED else load_source(cfg.name, source)
    if not rows:
        raise ConfigError(f"pool {cfg.name}: no rows in {[s.path for s in cfg.sources]}")
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, 1):
        if (first := seen.setdefault(row["id"], number)) != number:  # selection, difficulty and domains go by id
            raise ConfigError(f"pool {cfg.name}: id {row['id']!r} is given twice (rows {first} and {number})")
    return rows
