"""The s1 paper's test-time scaling metrics (section 3.2) and the parallel-scaling baseline.

A method is evaluated at several budgets; each evaluation is a :class:`BudgetRun` with its
mean thinking tokens a and accuracy f.
- Control: share of runs whose thinking tokens stay within the budget's [min, max].
- Scaling: mean over pairs of runs with a_i < a_j of (f_j - f_i) / (a_j - a_i), the average
  slope of accuracy against thinking compute (pairs with equal a have no slope and are skipped).
- Performance: the best accuracy.
Majority voting over n samples per question is the paper's parallel-scaling baseline.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from itertools import combinations
from typing import Optional, Sequence


@dataclass(frozen=True)
class BudgetRun:
    thinking_tokens: float
    accuracy: float
    budget_min: Optional[float] = None
    budget_max: Optional[float] = None


def control(runs: Sequence[BudgetRun]) -> float:
    within = [(r.budget_min is None or r.thinking_tokens >= r.budget_min) and
              (r.budget_max is None or r.thinking_tokens <= r.budget_max) for r in runs]
    return sum(within) / len(runs)


def scaling(runs: Sequence[BudgetRun]) -> Optional[float]:
    slopes = [(b.accuracy - a.accuracy) / (b.thinking_tokens - a.thinking_tokens)
              for a, b in combinations(sorted(runs, key=lambda r: r.thinking_tokens), 2)
              if b.thinking_tokens > a.thinking_tokens]
    return sum(slopes) / len(slopes) if slopes else None


def performance(runs: Sequence[BudgetRun]) -> float:
    return max(r.accuracy for r in runs)


def scaling_metrics(runs: Sequence[BudgetRun]) -> dict[str, Optional[float]]:
    return {"control": control(runs), "scaling": scaling(runs), "performance": performance(runs)}


def majority_vote(answers: Sequence[str]) -> str:
    """The most common non-empty answer; ties go to the one seen first."""
    counts = Counter(a for a in answers if a)
    return max(counts, key=lambda a: (counts[a], -answers.index(a))) if counts else ""


def vote_sizes(samples: int) -> list[int]:
    """1, 2, 4, ... up to the number of samples, which is always included."""
    return sorted({min(2 ** i, samples) for i in range(samples.bit_length() + 1)})


def majority_voting(records: Sequence[dict]) -> dict[str, dict[str, float]]:
    """The parallel-scaling baseline (s1 figure 4b): accuracy of the majority answer over the first
    k samples of each question, against the thinking tokens those k samples spent together.

    records: one per question and sample, with id, sample, extracted, correct, thinking_tokens.
    Samples that extracted the same answer share its verdict, so the vote needs no regrading.
    """
    by_question: dict[str, list[dict]] = defaultdict(list)
    for record in sorted(records, key=lambda r: r["sample"]):
        by_question[record["id"]].append(record)
    samples = min(len(group) for group in by_question.values())
    curve = {}
    for k in vote_sizes(samples):
        correct, tokens = 0, 0
        for group in by_question.values():
            voted = majority_vote([r["extracted"] for r in group[:k]])
            correct += any(r["correct"] for r in group[:k] if voted and r["extracted"] == voted)
            tokens += sum(r["thinking_tokens"] for r in group[:k])
        curve[str(k)] = {"accuracy": correct / len(by_question), "thinking_tokens": tokens / len(by_question)}
    return curve
