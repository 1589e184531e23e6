"""Budget-forced generation of benchmark rows, with progress bars: one pass per sample (and the redraws of a mode
that draws again, such as rejection), or a whole scaling curve from one generation (budget=scale)."""
from __future__ import annotations

from contextlib import ExitStack
from typing import Callable

from tqdm import tqdm

from s1x.chat import S1Format
from s1x.config import BudgetConfig, EvalConfig, ExtendConfig
from s1x.evaluate.budget import ForcingPolicy, SampleState
from s1x.evaluate.curve import force_curve
from s1x.evaluate.engines import Engine
from s1x.evaluate.modes import MODES
from s1x.evaluate.policy import forcing_policy
from s1x.evaluate.records import records


def _force(fmt: S1Format, engine: Engine, policy: ForcingPolicy, prompts: list[str], name: str,
           seed: int = 0) -> list[SampleState]:
    states = [SampleState(fmt.encode(p), policy, seed=(seed << 32) + i) for i, p in enumerate(prompts)]
    with tqdm(total=len(states), desc=f"eval {name}", unit="sample") as bar:
        engine.force(states, seed, on_round=lambda done: bar.update(done - bar.n))
    return states


def evaluate_rows(fmt: S1Format, engine: Engine, policy: ForcingPolicy, rows: list[dict], name: str,
                  budget: BudgetConfig | None = None, samples: int = 1, seed: int = 0) -> list[dict]:
    """Budget-forced generation and grading of benchmark rows (id, question, answer): one record
    per row and sample, sample by sample, each sample drawn with its own seeds (from `seed` on).

    A mode that draws again (rejection) redraws the samples it rejects, up to its draws, keeping the last
    draw when none is accepted. The prompt holds the mode's instruction and its thinking starts with
    budget.think_prefix, where the mode reads them.
    """
    mode = MODES[budget.mode] if budget is not None else None
    instruction = mode.instruction(budget) if mode else ""
    prefix = budget.think_prefix if mode and "think_prefix" in mode.reads else ""
    prompts = [fmt.prompt(r["question"], instruction, prefix) for r in rows]
    draws = mode.draws(budget) if mode else 1
    found = []
    for sample in range(samples):
        label = name if samples == 1 else f"{name} sample {sample + 1}/{samples}"
        states, attempts = _draw(fmt, engine, policy, prompts, label, budget, seed + sample * draws)
        found += records(fmt, rows, prompts, states, attempts, sample)
    return found


def _draw(fmt: S1Format, engine: Engine, policy: ForcingPolicy, prompts: list[str], name: str,
          budget: BudgetConfig | None, seed: int) -> tuple[list[SampleState], list[int]]:
    """One sample per prompt (seeds seed, seed + 1, ... for the redraws) and its draw count."""
    states = _force(fmt, engine, policy, prompts, name, seed)
    attempts = [1] * len(prompts)
    if budget is None:
        return states, attempts
    mode = MODES[budget.mode]
    for attempt in range(2, mode.draws(budget) + 1):
        redo = [i for i, state in enumerate(states) if mode.redraw(state, budget)]
        if not redo:
            break
        redrawn = _force(fmt, engine, policy, [prompts[i] for i in redo], f"{name} draw {attempt}", seed + attempt - 1)
        for i, state in zip(redo, redrawn):
            states[i], attempts[i] = state, attempt
    return states, attempts


def evaluate_curve(fmt: S1Format, engine: Engine, eval_cfg: EvalConfig, budget: BudgetConfig, extend: ExtendConfig,
                   rows: list[dict], name: str, seed: int = 0) -> dict[str, list[dict]]:
    """Records per point of budget=scale's curve (caps and extensions), from one generation (s1x/evaluate/curve.py)."""
    prompts = [fmt.prompt(r["question"]) for r in rows]
    with ExitStack() as bars:
        def answers_bar(total: int) -> Callable[[int], None]:
            bar = bars.enter_context(tqdm(total=total, desc=f"eval {name} branch answers", unit="sample"))
            return lambda answered: bar.update(answered - bar.n)

        points = force_curve(lambda policy: _force(fmt, engine, policy, prompts, name, seed),
                             lambda requests: engine.generate(requests, seed),
                             lambda point: forcing_policy(fmt, eval_cfg, point, extend), budget.caps, budget.extensions,
                             answers_bar)
    return {label: records(fmt, rows, prompts, states) for label, states in points.items()}
