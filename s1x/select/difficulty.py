"""The s1 difficulty signal from s1x's own evaluation: which pool questions the base models solve.

Named base models (data.difficulty_models) are evaluated once per question set (greedy, no budget
forcing); a row's base_correct is 1 if any of them solved it, so the s1k strategy drops what either
model already gets right, as the paper did. Without them (and without a pool column), the configured
base model is scored instead: does it answer correctly with no thinking? Both are cached in the store
under `difficulty/`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import time
from pathlib import Path

from s1x.config import BudgetMode, EvalConfig, ExtendConfig, ModelConfig
from s1x.evaluate.engines.loading import load_engine
from s1x.evaluate.generation import evaluate_rows
from s1x.evaluate.modes import budget_config
from s1x.evaluate.policy import forcing_policy
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
            with engine:  # freed before the next base model loads: one engine per process
                policy = forcing_policy(fmt, eval_cfg, budget_config(BudgetMode.none), ExtendConfig(name="none", string=""))
                records = evaluate_rows(fmt, engine, policy, rows, f"difficulty {base.name}")
            with open(out / "records.jsonl", "w") as handle:
                for record in records:
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


def score_without_thinking(rows: list[dict], model_cfg: ModelConfig, model_path: str, store: Store,
                           batch_size: int = 32) -> None:
    """Set row["base_correct"] to whether the base model, made to answer with no thinking at all, would write the
    gold answer first (each of its tokens the most likely one after the answer cue).

    The difficulty signal when the pool has none and no data.difficulty_models are named: one forward pass per
    question instead of a generation, cached in the store under `difficulty/`. What the model answers without
    thinking is what thinking cannot be credited for, so s1k keeps the rows it gets wrong."""
    digest = questions_digest(rows)

    def compute(out: Path) -> None:
        import torch

        from s1x.chat import S1Format
        from s1x.evaluate.policy import ANSWER_CUE
        from s1x.models import inference_placement, load_model, load_tokenizer

        tokenizer = load_tokenizer(model_path)
        fmt = S1Format(tokenizer, model_cfg)
        dtype = model_cfg.dtype.value
        model = load_model(model_path, dtype, inference_placement(model_path, dtype)).eval()
        cue = fmt.encode("\n" + model_cfg.answer_start + ANSWER_CUE)
        with open(out / "records.jsonl", "w") as handle:
            for start in range(0, len(rows), batch_size):
                batch = rows[start:start + batch_size]
                prefixes = [fmt.encode(fmt.prompt(r["question"])) + cue for r in batch]
                golds = [fmt.encode(" " + str(r["answer"]).strip()) for r in batch]
                width = max(len(p) + len(g) for p, g in zip(prefixes, golds))
                ids = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
                mask = torch.zeros_like(ids)
                for i, (p, g) in enumerate(zip(prefixes, golds)):
                    ids[i, :len(p) + len(g)], mask[i, :len(p) + len(g)] = torch.tensor(p + g), 1
                with torch.inference_mode():
                    best = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits.argmax(-1).cpu()
                for i, (row, p, g) in enumerate(zip(batch, prefixes, golds)):
                    solved = best[i, len(p) - 1:len(p) + len(g) - 1].tolist() == g
                    handle.write(json.dumps({"id": row["id"], "correct": solved}) + "\n")

    start = time.perf_counter()
    out, reused = store.get_or_compute("difficulty", {"model": model_cfg, "path": model_path, "questions": digest,
                                                      "method": "answer_without_thinking"}, compute)
    log.info("%-8s %-6s %6.1fs  %s answering %d pool questions without thinking  %s", "difficulty",
             "reused" if reused else "done", time.perf_counter() - start, model_cfg.name, len(rows), out)
    solved = {record["id"]: float(record["correct"]) for record in map(json.loads, open(out / "records.jsonl"))}
    for row in rows:
        row["base_correct"] = solved[row["id"]]
