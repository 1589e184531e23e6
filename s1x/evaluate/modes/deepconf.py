"""budget=deepconf: confidence-filtered parallel thinking, DeepConf (Fu et al. 2025, arXiv 2508.15260).

A token's confidence is minus the mean log-probability of its budget.top_k candidates; a trace's confidence is
its lowest group confidence, the mean over any budget.window consecutive thinking tokens (over all of them when
fewer). Offline (budget.warmup 0): each question's eval.samples traces are generated in full, the budget.keep
share of most confident ones kept, and those vote, each answer weighted by its traces' confidence. Online:
budget.warmup traces per question vote and set its threshold at the (1 - keep) quantile of their confidences;
each later trace is measured every budget.window thinking tokens and stopped once a window falls below the
threshold (a finished one votes where it stays above it); a question draws no more traces once one answer holds
budget.consensus of the vote's weight.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from s1x.config import BudgetConfig, BudgetMode
from s1x.evaluate.budget import Measurer, Phase, Rule, SampleState
from s1x.evaluate.modes.mode import Mode, Prefixed


@dataclass
class DeepConfBudget(Prefixed):
    window: int = 2048  # thinking tokens a group confidence averages
    top_k: int = 20  # candidates a token's confidence averages
    keep: float = 0.1  # the share of most confident traces that vote (online: the warm-up's percentile)
    warmup: int = 0  # traces per question that set the online threshold; 0: offline
    consensus: float = 0.95  # online: a question's sampling stops once one answer holds this share of the vote


def lowest_group(confidences: list[float], window: int) -> float:
    """The lowest mean of `window` consecutive token confidences (their mean when fewer; 0 for none)."""
    if len(confidences) <= window:
        return sum(confidences) / len(confidences) if confidences else 0.0
    total = sum(confidences[:window])
    lowest = total
    for i in range(window, len(confidences)):
        total += confidences[i] - confidences[i - window]
        lowest = min(lowest, total)
    return lowest / window


def quantile(values: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks."""
    ranked, at = sorted(values), q * (len(values) - 1)
    below = math.floor(at)
    return ranked[below] + (ranked[min(below + 1, len(ranked) - 1)] - ranked[below]) * (at - below)


class StopBelowThreshold(Rule):
    """Online traces (their notes hold a threshold) pause every window of thinking to be measured."""

    def request_tokens(self, state: SampleState, remaining: int) -> int:
        if "threshold" not in state.notes:
            return remaining
        window = state.notes["window"]
        return min(remaining, window - state.thinking_tokens % window)

    def at_pause(self, state: SampleState, body: list[int]) -> None:
        if "threshold" in state.notes and state.thinking_left() > 0:
            state.phase = Phase.measuring
        else:
            super().at_pause(state, body)

    def measure(self, states: list[SampleState], engine: Measurer) -> None:
        seen = [state.notes.setdefault("confidences", []) for state in states]
        new = engine.confidences([state.prompt_ids + state.generated for state in states],
                                 [len(state.prompt_ids) + len(done) for state, done in zip(states, seen)],
                                 states[0].notes["top_k"])
        for state, done, values in zip(states, seen, new):
            done += values
            if lowest_group(done, state.notes["window"]) < state.notes["threshold"]:
                state.notes["stopped"] = True  # the trace ends here, unanswered, and never votes
                state.thinking_end = state.answer_begin = len(state.generated)
                state.phase = Phase.done
            else:
                state.phase = Phase.thinking

    def extras(self, state: SampleState, decode) -> dict:
        notes = state.notes
        return {"confidence": notes.get("confidence"), "kept": notes.get("kept", False),
                "stopped": notes.get("stopped", False), "threshold": notes.get("threshold")}


def _scorer(draws, budget: BudgetConfig):
    """Sets each finished trace's confidence from its whole thinking as it finishes (so the journal keeps it): of
    an online trace only the tokens after its last measured window are measured."""
    def score(states: list[SampleState]) -> None:
        finished = [state for state in states if not state.notes.get("stopped")]
        seen = [state.notes.get("confidences", []) for state in finished]
        for state, done, values in zip(finished, seen, draws.confidences(finished, budget.top_k, list(map(len, seen)))
                                       if finished else []):
            state.notes["confidence"] = lowest_group(done + values, budget.window)
    return score


def _leads(records: list[dict], consensus: float) -> bool:
    """Whether one answer holds `consensus` of the kept traces' confidence."""
    weights = _weights(records)
    return bool(weights) and max(weights.values()) >= consensus * sum(weights.values())


def _weights(records: list[dict]) -> dict[str, float]:
    weights: dict[str, float] = defaultdict(float)
    for record in records:
        if record["extras"]["kept"] and record["extracted"]:
            weights[record["extracted"]] += record["extras"]["confidence"]
    return weights


def _offline(draws, budget: BudgetConfig, samples: int) -> list[dict]:
    rows = list(range(len(draws.rows)))
    drawn = [draws.draw(rows, sample, on_finished=_scorer(draws, budget)) for sample in range(samples)]
    kept = max(1, math.ceil(budget.keep * samples))
    for row in rows:
        ranked = sorted((states[row] for states, _ in drawn), key=lambda s: -s.notes["confidence"])
        for state in ranked[:kept]:
            state.notes["kept"] = True
    return [record for sample, (states, attempts) in enumerate(drawn)
            for record in draws.records(rows, states, attempts, sample)]


def _online(draws, budget: BudgetConfig, samples: int) -> list[dict]:
    rows = list(range(len(draws.rows)))
    warm = [draws.draw(rows, sample, on_finished=_scorer(draws, budget)) for sample in range(budget.warmup)]
    thresholds = [quantile([states[row].notes["confidence"] for states, _ in warm], 1 - budget.keep) for row in rows]
    by_row: dict[int, list[dict]] = defaultdict(list)
    for sample, (states, attempts) in enumerate(warm):
        for row, state in zip(rows, states):
            state.notes.update(threshold=thresholds[row], kept=True)
        for row, record in zip(rows, draws.records(rows, states, attempts, sample)):
            by_row[row].append(record)
    for sample in range(budget.warmup, samples):
        open_rows = [row for row in rows if not _leads(by_row[row], budget.consensus)]
        if not open_rows:
            break
        notes = [dict(threshold=thresholds[row], window=budget.window, top_k=budget.top_k) for row in open_rows]
        states, attempts = draws.draw(open_rows, sample, notes, _scorer(draws, budget))
        for state in states:
            state.notes["kept"] = not state.notes.get("stopped") and state.notes["confidence"] >= state.notes["threshold"]
            state.notes.pop("confidences", None)  # measured on the way; the record keeps the trace's confidence
        for row, record in zip(open_rows, draws.records(open_rows, states, attempts, sample)):
            by_row[row].append(record)
    return [record for row in rows for record in by_row[row]]


def vote(records: list[dict]) -> dict[str, float]:
    """Each question's answer with the most confidence among its kept traces; its thinking tokens are all of its
    traces' (warm-up and stopped ones too)."""
    by_question: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_question[record["id"]].append(record)
    correct = tokens = 0
    for group in by_question.values():
        weights = _weights(group)
        winner = max(weights, key=weights.get) if weights else None
        correct += any(r["correct"] for r in group if r["extras"]["kept"] and r["extracted"] == winner)
        tokens += sum(r["thinking_tokens"] for r in group)
    return {"accuracy": correct / len(by_question), "thinking_tokens": tokens / len(by_question)}


def _checks(budget: BudgetConfig, eval_cfg) -> list[tuple[bool, str]]:
    return [
        # (several samples need eval.temperature > 0: EvalConfig says so)
        (eval_cfg.samples >= 2, f"budget=deepconf votes over traces: eval.samples must be at least 2, got {eval_cfg.samples}"),
        (0 < budget.keep <= 1, f"budget=deepconf: budget.keep must be a share in (0, 1], got {budget.keep}"),
        (0 < budget.consensus <= 1, f"budget=deepconf: budget.consensus must be a share in (0, 1], got {budget.consensus}"),
        (0 <= budget.warmup < eval_cfg.samples,
         f"budget=deepconf: budget.warmup must be below eval.samples ({eval_cfg.samples}), got {budget.warmup}"),
    ]


MODE = Mode(BudgetMode.deepconf, DeepConfBudget,
            amounts=("keep", "consensus"), positive=("window", "top_k"), checks=_checks, in_rounds=True,
            rule=StopBelowThreshold(), sample=lambda draws, budget, samples:
            (_online if budget.warmup else _offline)(draws, budget, samples), vote=vote)
