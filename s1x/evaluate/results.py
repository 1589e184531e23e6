"""An evaluation's results as typed records: (benchmark, point on a budget curve, method, samples) and the
values measured there.

Readers (the report, the pipeline's cell record, W&B) select results by these fields and never parse a name,
so a benchmark may be called anything (`my.bench@v2`, `org/set`). `Series.label` writes the name people see
('math500@16', 'math500 maj@4'), only ever for display. Imports nothing heavy: the pipeline reads results
while planning a sweep.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from typing import Any, Optional

METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class Point:
    """A point of a budget=scale curve: thinking capped at `cap` tokens, or the end of thinking ignored
    `extensions` times (0: the model's own ending). Exactly one is set."""
    cap: Optional[int] = None
    extensions: Optional[int] = None

    def __post_init__(self) -> None:
        if (self.cap is None) == (self.extensions is None):
            raise ValueError(f"a curve point is a cap or a number of extensions, not {self}")

    @property
    def label(self) -> str:
        """'16' for a cap, '+2' for two extensions: the key s1x/evaluate/curve.py gives the point."""
        return str(self.cap) if self.cap is not None else f"+{self.extensions}"

    def order(self) -> tuple[int, int]:
        """Caps by size, then extensions: the curve's order of thinking allowed."""
        return (0, self.cap) if self.cap is not None else (1, self.extensions)

    def to_dict(self) -> dict[str, int]:
        return {"cap": self.cap} if self.cap is not None else {"extensions": self.extensions}


class Method(Enum):
    single = "single"  # every sample's answer graded on its own
    majority = "majority"  # the most common answer among a question's first `samples` samples
    vote = "vote"  # the budget mode's own vote over a question's samples (deepconf: confidence-weighted)


@dataclass(frozen=True)
class Series:
    """What one column of results holds across cells: a benchmark, at a point of its curve or none, each
    sample on its own (votes None) or a vote over `votes` samples: majority voting, or the mode's own
    (`mode_vote`)."""
    benchmark: str
    point: Optional[Point] = None
    votes: Optional[int] = None
    mode_vote: bool = False

    @property
    def label(self) -> str:
        """For people, never parsed: 'math500', 'math500@4096', 'math500@+2', 'math500 maj@4', 'math500 vote@16'."""
        at = f"@{self.point.label}" if self.point else ""
        return f"{self.benchmark}{at}" + (f" {'vote' if self.mode_vote else 'maj'}@{self.votes}" if self.votes else "")

    def order(self) -> tuple:
        """A benchmark, then its curve's points in order, then majority voting by votes, then the mode's vote."""
        return self.benchmark, self.point.order() if self.point else (-1, 0), self.mode_vote, self.votes or 0


# Result fields that are measured values (the rest say what was measured, and where its records are).
VALUES = ("n", "accuracy", "mean_thinking_tokens", "mean_thinking_steps", "mean_attempts", "extensions", "capped",
          "hit_limit", "accuracy_seed_mean", "accuracy_seed_std")


@dataclass(frozen=True)
class Result:
    """One measured (benchmark, point, method, samples): `n` graded answers (single: questions x samples,
    majority: questions) and their accuracy; majority's thinking tokens are its voting samples' together.
    The per-sample counts (steps, attempts, extensions, capped, hit_limit) and the interval are single's."""
    benchmark: str
    point: Optional[Point]
    method: Method
    samples: int
    records: str  # the per-sample records, relative to metrics.json's directory
    n: int
    accuracy: float
    mean_thinking_tokens: float
    accuracy_ci95: Optional[tuple[float, float]] = None
    mean_thinking_steps: Optional[float] = None
    mean_attempts: Optional[float] = None
    extensions: Optional[int] = None
    capped: Optional[int] = None
    hit_limit: Optional[int] = None
    accuracy_seed_mean: Optional[float] = None  # eval.seeds: the mean and standard deviation of each seed's accuracy
    accuracy_seed_std: Optional[float] = None

    @property
    def series(self) -> Series:
        voted = self.method is not Method.single
        return Series(self.benchmark, self.point, self.samples if voted else None, self.method is Method.vote)

    def values(self) -> dict[str, float]:
        """Its measured numbers by field, the interval as accuracy_ci95_low / _high; None left out."""
        values = {field: getattr(self, field) for field in VALUES if getattr(self, field) is not None}
        if self.accuracy_ci95 is not None:
            values["accuracy_ci95_low"], values["accuracy_ci95_high"] = self.accuracy_ci95
        return values

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "point": self.point and self.point.to_dict(), "method": self.method.value}

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> "Result":
        ci = entry.get("accuracy_ci95")
        return cls(**{**entry, "point": entry["point"] and Point(**entry["point"]), "method": Method(entry["method"]),
                      "accuracy_ci95": ci and tuple(ci)})

