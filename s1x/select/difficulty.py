"""The s1 difficulty signal from s1x's own evaluation: which pool questions each base model solves.

Each base model is evaluated once per question set (greedy, no budget forcing), cached in the
store under `difficulty/`; a row's base_correct is 1 if any base model solved it, so the
s1k strategy drops what either model already gets right, as the paper did.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import time
from pathlib import Path

from s1x.config import BudgetConfig, BudgetMode, EvalConfig, ExtendConfig, ModelConfig
from s1x.evaluate.stage import evaluate_rows, forcing_policy, load_engine
from s1x.models import resolve_model_path
from s1x.store import Store

log = logging.getLogger("s1x")


def questions_digest(rows: list[dict]) -> str:
    text = json.dumps(sorted((r["id"], r["question"], str(r["answer"])) for r in rows))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def add_base_correctness(rows: list[dict], model_paths: list[str], model_cfg: ModelConfig, eval_cfg: EvalConfig,
                         store: Store, cache_dir: str) -> None:
    """Set row["base_correct"] (0.0 or 1.0) from the base models' graded answers."""
    solved = {r["id"]: 0.0 for r in rows}
    digest = questions_digest(rows)
    for path in model_paths:
        base = dataclasses.replace(model_cfg, name=re.sub(r"[^A-Za-z0-9._-]+", "_", path), path=path)
        limits = {"max_thinking_tokens": eval_cfg.max_thinking_tokens, "max_answer_tokens": eval_cfg.max_answer_tokens}

        def compute(out: Path) -> None:
            fmt, engine = load_engine(base, resolve_model_path(base, cache_dir), eval_cfg)
            policy = forcing_policy(fmt, eval_cfg, BudgetConfig(mode=BudgetMode.none), ExtendConfig(name="none", string=""))
            with open(out / "records.jsonl", "w") as handle:
                for record in evaluate_rows(fmt, engine, policy, rows, f"difficulty {base.name}"):
                    handle.write(json.dumps(record) + "\n")

        start = time.perf_counter()
        out, reused = store.get_or_compute("difficulty", {"model": base, "questions": digest, **limits}, compute)
        log.info("%-8s %-6s %6.1fs  %s on %d pool questions  %s", "difficulty", "reused" if reused else "done",
                 time.perf_counter() - start, base.name, len(rows), out)
        for line in open(out / "records.jsonl"):
            record = json.loads(line)
            solved[record["id"]] = max(solved[record["id"]], float(record["correct"]))
    for row in rows:
        row["base_correct"] = solved[row["id"]]
