"""The s1 paper's test-time scaling metrics (section 3.2) and the parallel-scaling baseline.

A method is evaluated at several budgets; each evaluation is a :class:`BudgetRun` with its
mean thinking tokens a and accuracy f.
- Control: share of runs whose thinking tokens stay within the budget's [min, max].
- Scaling: mean over pairs of runs with a_i < a_j of (f_j - f_i) / (a_j - a_i), the average
  slope of accuracy against thinking compute (pairs with equal a have no slope and are skipped).
- Performance: the best accuracy.
"""
from __future__ import annotations

from collections import Counter
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
