"""A sample's record (the schema of records/*.jsonl) and the statistics of a set of them."""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

from s1x.chat import S1Format
from s1x.evaluate.budget import SampleState
from s1x.evaluate.grading import grade

# Per-sample records go to numbered files, named in their results: a benchmark's name may hold '/', '.' or '@'.
RECORDS_DIR = "records"


def records(fmt: S1Format, rows: list[dict], prompts: list[str], states: list[SampleState],
            attempts: list[int] | None = None, sample: int = 0) -> list[dict]:
    """One record per row: the text, its thinking's counts, how forcing went, the grade; and under `extras`
    what the sample's budget mode records of its own (s1x/evaluate/modes/)."""
    tokenizer = fmt.tokenizer
    decode = lambda ids: tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
    found = []
    for i, (row, prompt, state) in enumerate(zip(rows, prompts, states)):
        answer = decode(state.generated[state.answer_begin:])
        thinking = decode(state.generated[: state.thinking_end])
        verdict = grade(row.get("kind", "math"), answer, row["answer"])  # the answer part only, never the thinking
        found.append({
            "id": row["id"], "sample": sample, "prompt": prompt,
            "text": tokenizer.decode(state.generated, skip_special_tokens=False),
            "thinking_tokens": state.thinking_tokens, "thinking_steps": sum(bool(line.strip()) for line in thinking.splitlines()),
            "rounds": state.rounds, "attempts": attempts[i] if attempts else 1,
            "extensions": state.extensions, "extension_offsets": state.extension_offsets, "capped": state.capped,
            "hit_limit": state.hit_limit, "extras": state.policy.rule.extras(state, decode),
            "answer_text": answer, "extracted": verdict.extracted, "gold": verdict.gold,
            "correct": verdict.correct, "grading_method": verdict.method, "grading_timeout": verdict.timed_out,
        })
    return found


def write_records(path: Path, found: list[dict]) -> None:
    path.parent.mkdir(exist_ok=True)
    with open(path, "w") as handle:
        for record in found:
            handle.write(json.dumps(record) + "\n")


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval for an accuracy: sensible at 0 %, 100 % and small n."""
    if n == 0:
        return 0.0, 0.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def summarize(found: list[dict]) -> dict:
    n_correct = sum(r["correct"] for r in found)
    return {
        "n": len(found), "accuracy": n_correct / len(found),
        "accuracy_ci95": wilson_interval(n_correct, len(found)),
        "mean_thinking_tokens": statistics.fmean(r["thinking_tokens"] for r in found),
        "mean_thinking_steps": statistics.fmean(r["thinking_steps"] for r in found),
        "mean_attempts": statistics.fmean(r["attempts"] for r in found),
        "extensions": sum(r["extensions"] for r in found),
        "capped": sum(r["capped"] for r in found),
        "hit_limit": sum(r["hit_limit"] for r in found),
    }
