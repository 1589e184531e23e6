"""Budget-forced generation of benchmark rows, with progress bars: one pass per sample (and the redraws of a mode
that draws again, such as rejection), or a whole scaling curve from one generation (budget=scale)."""
from __future__ import annotations

from contextlib import ExitStack
from typing import Callable

from tqdm import tqdm

from s1x.chat import S1Format
from s1x.config import BudgetConfig, EvalConfig, ExtendConfig
from s1x.evaluate.budget import ForcingPolicy, Phase, SampleState
from s1x.evaluate.curve import force_curve
from s1x.evaluate.engines import Engine
from s1x.evaluate.journal import Journal
from s1x.evaluate.modes import MODES
from s1x.evaluate.policy import forcing_policy
from s1x.evaluate.records import records


Finished = Callable[[list[SampleState]], None]  # a mode's last word on newly finished samples, before they are journaled


def _force(fmt: S1Format, engine: Engine, policy: ForcingPolicy, prompts: list[str], name: str,
           seed: int = 0, notes: list[dict] | None = None, journal: Journal | None = None,
           on_finished: Finished | None = None) -> list[SampleState]:
    """Force every prompt's sample; with a journal, the samples it holds for this call are put back and each
    batch of newly finished ones is written to it (after `on_finished` saw them, so what it adds is kept too)."""
    states = [SampleState(fmt.encode(p), policy, seed=(seed << 32) + i, notes=dict(notes[i]) if notes else {})
              for i, p in enumerate(prompts)]
    restored = journal.restore(name, seed, prompts, states) if journal else 0
    todo = [i for i, state in enumerate(states) if state.phase is not Phase.done]
    written = set()

    def finished(done: int) -> None:
        new = [i for i in todo if i not in written and states[i].phase is Phase.done]
        if on_finished and new:
            on_finished([states[i] for i in new])
        if journal:
            journal.append(name, seed, [(i, prompts[i], states[i]) for i in new])
        written.update(new)
        bar.update(restored + done - bar.n)

    with tqdm(total=len(states), initial=restored, desc=f"eval {name}", unit="sample") as bar:
        engine.force([states[i] for i in todo], seed, on_round=finished)
        finished(len(todo))
    return states


class Draws:
    """Drawing samples of some of the rows, what a mode's own sampling (`Mode.sample`) works with: each sample
    seeded by its number, redrawn where the mode redraws; the confidences of their thinking; their records."""

    def __init__(self, fmt: S1Format, engine: Engine, policy: ForcingPolicy, rows: list[dict], name: str,
                 budget: BudgetConfig | None, samples: int, seed: int, journal: Journal | None = None) -> None:
        self.fmt, self.engine, self.policy, self.rows, self.samples = fmt, engine, policy, rows, samples
        self.name, self.budget, self.seed, self.journal = name, budget, seed, journal
        self.mode = MODES[budget.mode] if budget is not None else None
        instruction = self.mode.instruction(budget) if self.mode else ""
        prefix = budget.think_prefix if self.mode and "think_prefix" in self.mode.reads else ""
        self.prompts = [fmt.prompt(r["question"], instruction, prefix) for r in rows]

    def draw(self, indices: list[int], sample: int, notes: list[dict] | None = None,
             on_finished: Finished | None = None) -> tuple[list[SampleState], list[int]]:
        """Sample number `sample` of these rows (their states start with `notes`), and each one's draw count;
        `on_finished` sees each newly generated sample once it is done (not those the journal put back)."""
        draws = self.mode.draws(self.budget) if self.mode else 1
        seed = self.seed + sample * draws
        label = self.name if self.samples == 1 else f"{self.name} sample {sample + 1}/{self.samples}"
        prompts = [self.prompts[i] for i in indices]
        states = _force(self.fmt, self.engine, self.policy, prompts, label, seed, notes, self.journal, on_finished)
        attempts = [1] * len(prompts)
        for attempt in range(2, draws + 1):
            redo = [i for i, state in enumerate(states) if self.mode.redraw(state, self.budget)]
            if not redo:
                break
            redrawn = _force(self.fmt, self.engine, self.policy, [prompts[i] for i in redo],
                             f"{label} draw {attempt}", seed + attempt - 1, notes and [notes[i] for i in redo],
                             self.journal, on_finished)
            for i, state in zip(redo, redrawn):
                states[i], attempts[i] = state, attempt
        return states, attempts

    def confidences(self, states: list[SampleState], top_k: int, measured: list[int]) -> list[list[float]]:
        """Token confidences of each sample's thinking after its first `measured` tokens (Engine.confidences)."""
        contexts = [state.prompt_ids + state.generated[: state.thinking_end] for state in states]
        return self.engine.confidences(contexts, [len(state.prompt_ids) + n for state, n in zip(states, measured)], top_k)

    def records(self, indices: list[int], states: list[SampleState], attempts: list[int], sample: int) -> list[dict]:
        return records(self.fmt, [self.rows[i] for i in indices], [self.prompts[i] for i in indices], states,
                       attempts, sample)


def every_sample(draws: Draws, budget: BudgetConfig | None, samples: int) -> list[dict]:
    """Every row `samples` times, sample by sample: the sampling of every mode without one of its own."""
    found, rows = [], list(range(len(draws.rows)))
    for sample in range(samples):
        found += draws.records(rows, *draws.draw(rows, sample), sample)
    return found


def evaluate_rows(fmt: S1Format, engine: Engine, policy: ForcingPolicy, rows: list[dict], name: str,
                  budget: BudgetConfig | None = None, samples: int = 1, seed: int = 0,
                  journal: Journal | None = None) -> list[dict]:
    """Budget-forced generation and grading of benchmark rows (id, question, answer): one record
    per row and sample, sample by sample, each sample drawn with its own seeds (from `seed` on).

    A mode that draws again (rejection) redraws the samples it rejects, up to its draws, keeping the last
    draw when none is accepted; a mode with a sampling of its own (deepconf) decides which samples are drawn.
    The prompt holds the mode's instruction and its thinking starts with budget.think_prefix, where the mode
    reads them. With a journal, samples it holds are not generated again (s1x/evaluate/journal.py).
    """
    draws = Draws(fmt, engine, policy, rows, name, budget, samples, seed, journal)
    sample = draws.mode.sample if draws.mode and draws.mode.sample else every_sample
    return sample(draws, budget, samples)


def evaluate_curve(fmt: S1Format, engine: Engine, eval_cfg: EvalConfig, budget: BudgetConfig, extend: ExtendConfig,
                   rows: list[dict], name: str, seed: int = 0, journal: Journal | None = None) -> dict[str, list[dict]]:
    """Records per point of budget=scale's curve (caps and extensions), from one generation (s1x/evaluate/curve.py).
    With a journal, the main generation resumes per sample; the branches' short answers are generated again."""
    prompts = [fmt.prompt(r["question"]) for r in rows]
    with ExitStack() as bars:
        def answers_bar(total: int) -> Callable[[int], None]:
            bar = bars.enter_context(tqdm(total=total, desc=f"eval {name} branch answers", unit="sample"))
            return lambda answered: bar.update(answered - bar.n)

        points = force_curve(lambda policy: _force(fmt, engine, policy, prompts, name, seed, journal=journal),
                             lambda requests: engine.generate(requests, seed),
                             lambda point: forcing_policy(fmt, eval_cfg, point, extend), budget.caps, budget.extensions,
                             answers_bar)
    return {label: records(fmt, rows, prompts, states) for label, states in points.items()}
