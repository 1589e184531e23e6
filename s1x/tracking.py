"""W&B records: one run per cell and stage, grouped by sweep, job_type = the stage.

Each run carries the flattened config, the stage's store key and whether it was reused, its
summary numbers, and for evaluation a per-sample table per benchmark. The report stage adds
one run (job_type "report") to the group (s1x/report/tracking.py). Without an API key (or
network) runs are written offline, for `wandb sync` later.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from s1x.config import Config, LoggerKind
from s1x.evaluate.results import METRICS_FILE, Method, Result
from s1x.store import _plain

TABLE_COLUMNS = ["id", "thinking_tokens", "rounds", "extensions", "capped", "hit_limit", "extracted", "gold", "correct", "text"]


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def stage_summary(stage: str, path: Path) -> dict[str, Any]:
    if stage == "select":
        m = json.loads((path / "manifest.json").read_text())
        return {"size": m["size"], "candidates": m["candidates"], "domains": len(m["domains"]),
                "trace_tokens_mean": m["trace_tokens"]["mean"], **flatten(m["filters"], "filtered.")}
    if stage == "train":
        s = json.loads((path / "train_stats.json").read_text())
        return {k: v for k, v in s.items() if not isinstance(v, list)}
    m = json.loads((path / METRICS_FILE).read_text())
    results = [Result.from_dict(entry) for entry in m["results"]]
    summary = {f"{r.series.label}.{field}": value for r in results for field, value in r.values().items()}
    return {**summary, **flatten(m.get("scaling", {}), "scaling.")}


def _per_sample(eval_dir: Path) -> list[Result]:
    """The results whose records are each sample's own: one per benchmark and curve point."""
    results = json.loads((eval_dir / METRICS_FILE).read_text())["results"]
    return [r for r in map(Result.from_dict, results) if r.method is Method.single]


def wandb_mode() -> str:
    return os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")


def log_cell(cfg: Config, cell: dict, run_dir: Path, group: str) -> None:
    """Record each stage the cell ran (or reused) as its own W&B run."""
    if cfg.logger.kind is LoggerKind.none:
        return
    import wandb

    mode = wandb_mode()
    config = flatten(_plain(cfg))
    for stage, info in cell["stages"].items():
        path = Path(info["path"])
        run = wandb.init(project=cfg.logger.project, entity=cfg.logger.entity, group=group, job_type=stage,
                         name=f"{run_dir.name}-{stage}", dir=str(run_dir), mode=mode, reinit="create_new",
                         config={**config, "overrides": " ".join(cell["overrides"]), "store_key": info["key"]})
        run.summary.update({"reused": info["reused"], "seconds": info["seconds"], **stage_summary(stage, path)})
        if stage == "eval":
            for result in _per_sample(path):
                rows = [json.loads(line) for line in open(path / result.records)]
                table = wandb.Table(columns=TABLE_COLUMNS, data=[[r[c] for c in TABLE_COLUMNS] for r in rows])
                run.log({f"{result.series.label}/samples": table})
        run.finish()

