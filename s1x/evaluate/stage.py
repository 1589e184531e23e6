"""The evaluate stage: budget-forced generation on each benchmark, graded, with per-sample records."""
from __future__ import annotations

import itertools
import json
import math
import platform
import statistics
from contextlib import ExitStack
from importlib.metadata import version
from pathlib import Path
from typing import Callable, Optional

from tqdm import tqdm

from s1x.evaluate.benchmarks import benchmark
from s1x.evaluate.budget import ForcingPolicy, SampleState
from s1x.evaluate.curve import force_curve
from s1x.chat import S1Format
from s1x.config import BudgetConfig, BudgetMode, EvalConfig, ExtendConfig, Forcing, LengthClass, ModelConfig
from s1x.config import Engine as EngineName
from s1x.evaluate.engines import Engine
from s1x.evaluate.engines.hf import HFEngine
from s1x.evaluate.grading import grade
from s1x.evaluate.metrics import BudgetRun, majority_voting, scaling_metrics
from s1x.evaluate.results import METRICS_FILE, Method, Point, Result
from s1x.models import inference_placement, load_model, load_tokenizer

ANSWER_CUE = "Final Answer:"


def forcing_policy(fmt: S1Format, eval_cfg: EvalConfig, budget: BudgetConfig, extend: ExtendConfig) -> ForcingPolicy:
    m = fmt.markers
    end_ids = tuple(dict.fromkeys([fmt.end_of_turn_id, fmt.tokenizer.eos_token_id]))
    return ForcingPolicy(
        mode=budget.mode, tokens=budget.tokens, times=budget.times,
        thinking_limit=eval_cfg.max_thinking_tokens, answer_limit=eval_cfg.max_answer_tokens,
        think_end_id=fmt.think_end_id, end_ids=end_ids,
        extension_ids=tuple(fmt.encode(extend.string)),
        answer_open_ids=tuple(fmt.encode(m.answer_start)),
        cap_ids=tuple(fmt.encode("\n" + m.answer_start + ANSWER_CUE)),
        suppress_ids=word_token_ids(fmt.tokenizer, budget.suppress) if budget.mode is BudgetMode.no_wait else (),
        **_method_settings(fmt, budget),
    )


def _method_settings(fmt: S1Format, budget: BudgetConfig) -> dict:
    """The policy's settings for the modes after s1 (entropy, early_exit, schedule)."""
    if budget.mode is BudgetMode.entropy:
        return dict(threshold=budget.threshold)
    if budget.mode is BudgetMode.early_exit:
        return dict(probe_every=budget.probe_every, probe_tokens=budget.probe_tokens, agree=budget.agree)
    if budget.mode is BudgetMode.schedule:
        return dict(alpha_tokens=max(1, round(budget.alpha * budget.tokens)), probability=budget.probability,
                    transition_ids=transition_token_ids(fmt.tokenizer, budget.transition))
    return {}


def word_token_ids(tokenizer, words: list[str]) -> tuple[int, ...]:
    """Every token that reads as one of `words` on its own, whatever its case or leading space ("Wait", " wait",
    "WAIT"): what no_wait suppresses, so the model cannot spell the word another way with one token."""
    wanted = {word.strip().casefold() for word in words}
    return _tokens_reading(tokenizer, lambda text: text.strip().casefold() in wanted)


def transition_token_ids(tokenizer, text: str) -> tuple[int, ...]:
    """Every token whose text holds `text` ("\n\n" alone, ".\n\n", ...): budget=schedule's transition points."""
    return _tokens_reading(tokenizer, lambda token_text: text in token_text)


def _tokens_reading(tokenizer, wanted: Callable[[str], bool]) -> tuple[int, ...]:
    """The ids of the vocabulary's non-special tokens whose decoded text is `wanted`."""
    special = set(tokenizer.all_special_ids)
    return tuple(token for token in range(len(tokenizer)) if token not in special and wanted(tokenizer.decode([token])))


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval for an accuracy: sensible at 0 %, 100 % and small n."""
    if n == 0:
        return 0.0, 0.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _force(fmt: S1Format, engine: Engine, policy: ForcingPolicy, prompts: list[str], name: str,
           seed: int = 0) -> list[SampleState]:
    states = [SampleState(fmt.encode(p), policy, seed=(seed << 32) + i) for i, p in enumerate(prompts)]
    with tqdm(total=len(states), desc=f"eval {name}", unit="sample") as bar:
        engine.force(states, seed, on_round=lambda done: bar.update(done - bar.n))
    return states


def _records(fmt: S1Format, rows: list[dict], prompts: list[str], states: list[SampleState],
             attempts: list[int] | None = None, sample: int = 0) -> list[dict]:
    tokenizer = fmt.tokenizer
    records = []
    for i, (row, prompt, state) in enumerate(zip(rows, prompts, states)):
        answer = tokenizer.decode(state.generated[state.answer_begin:], skip_special_tokens=True)
        thinking = tokenizer.decode(state.generated[: state.thinking_end], skip_special_tokens=True)
        verdict = grade(row.get("kind", "math"), answer, row["answer"])  # the answer part only, never the thinking
        records.append({
            "id": row["id"], "sample": sample, "prompt": prompt,
            "text": tokenizer.decode(state.generated, skip_special_tokens=False),
            "thinking_tokens": state.thinking_tokens, "thinking_steps": sum(bool(line.strip()) for line in thinking.splitlines()),
            "rounds": state.rounds, "attempts": attempts[i] if attempts else 1,
            "extensions": state.extensions, "extension_offsets": state.extension_offsets, "capped": state.capped,
            "hit_limit": state.hit_limit, "entropies": state.entropies, "exited": state.exited,
            "probes": [{"at": probe.at, "answer": tokenizer.decode(probe.ids, skip_special_tokens=True),
                        "finished": probe.answer is not None} for probe in state.probes],
            "answer_text": answer, "extracted": verdict.extracted, "gold": verdict.gold,
            "correct": verdict.correct, "grading_method": verdict.method, "grading_timeout": verdict.timed_out,
        })
    return records


def _versions(engine: EngineName) -> dict[str, str]:
    versions = {p: version(p) for p in ("torch", "transformers", "math-verify")}
    if engine is EngineName.vllm:
        import vllm

        versions["vllm"] = vllm.__version__
    return versions


def budget_instruction(budget: BudgetConfig) -> str:
    """What the prompt-conditioned baselines add to the question (s1 section 3.1)."""
    if budget.mode is BudgetMode.token_conditional:
        return f"Think for up to {budget.tokens} tokens."
    if budget.mode is BudgetMode.step_conditional:
        return f"Think for up to {budget.steps} steps, one step per line."
    if budget.mode is BudgetMode.class_conditional:
        return {LengthClass.short: "Think briefly, then answer.",
                LengthClass.long: "Think step by step for as long as you need, checking your work, then answer."}[budget.length_class]
    return ""


def evaluate_rows(fmt: S1Format, engine: Engine, policy: ForcingPolicy, rows: list[dict], name: str,
                  budget: BudgetConfig | None = None, samples: int = 1, seed: int = 0) -> list[dict]:
    """Budget-forced generation and grading of benchmark rows (id, question, answer): one record
    per row and sample, sample by sample, each sample drawn with its own seeds (from `seed` on).

    budget=rejection resamples every sample whose thinking exceeds budget.tokens, up to
    budget.max_attempts draws, keeping the last draw when none fits.
    """
    instruction, prefix = (budget_instruction(budget), budget.think_prefix) if budget else ("", "")
    prompts = [fmt.prompt(r["question"], instruction, prefix) for r in rows]
    draws = budget.max_attempts if budget is not None and budget.mode is BudgetMode.rejection else 1
    records = []
    for sample in range(samples):
        label = name if samples == 1 else f"{name} sample {sample + 1}/{samples}"
        states, attempts = _draw(fmt, engine, policy, prompts, label, budget, seed + sample * draws)
        records += _records(fmt, rows, prompts, states, attempts, sample)
    return records


def _draw(fmt: S1Format, engine: Engine, policy: ForcingPolicy, prompts: list[str], name: str,
          budget: BudgetConfig | None, seed: int) -> tuple[list[SampleState], list[int]]:
    """One sample per prompt (seeds seed, seed + 1, ... for rejection's redraws) and its draw count."""
    states = _force(fmt, engine, policy, prompts, name, seed)
    attempts = [1] * len(prompts)
    if budget is not None and budget.mode is BudgetMode.rejection:
        for attempt in range(2, budget.max_attempts + 1):
            redo = [i for i, state in enumerate(states) if state.thinking_tokens > budget.tokens]
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
    return {label: _records(fmt, rows, prompts, states) for label, states in points.items()}


def summarize(records: list[dict]) -> dict:
    n_correct = sum(r["correct"] for r in records)
    return {
        "n": len(records), "accuracy": n_correct / len(records),
        "accuracy_ci95": wilson_interval(n_correct, len(records)),
        "mean_thinking_tokens": statistics.fmean(r["thinking_tokens"] for r in records),
        "mean_thinking_steps": statistics.fmean(r["thinking_steps"] for r in records),
        "mean_attempts": statistics.fmean(r["attempts"] for r in records),
        "extensions": sum(r["extensions"] for r in records),
        "capped": sum(r["capped"] for r in records),
        "hit_limit": sum(r["hit_limit"] for r in records),
    }


def load_engine(model_cfg: ModelConfig, model_path: str, eval_cfg: EvalConfig) -> tuple[S1Format, Engine]:
    """The tokenizer's format and the configured engine, holding the model until it is closed (use it with `with`)."""
    tokenizer = load_tokenizer(model_path)
    fmt = S1Format(tokenizer, model_cfg)
    dtype = model_cfg.dtype.value
    if eval_cfg.engine is EngineName.vllm:
        from s1x.evaluate.engines.vllm import VLLMEngine

        parallel = eval_cfg.tensor_parallel_size or inference_placement(model_path, dtype).tensor_parallel_size
        return fmt, VLLMEngine(model_path, dtype, eval_cfg.temperature, tensor_parallel_size=parallel,
                               gpu_memory_utilization=eval_cfg.gpu_memory_utilization,
                               max_model_len=eval_cfg.max_model_len, forcing=eval_cfg.forcing)
    model = load_model(model_path, dtype, inference_placement(model_path, dtype))  # the GPUs where there are some
    return fmt, HFEngine(model, tokenizer, eval_cfg.batch_size, eval_cfg.temperature)


def budget_bounds(budget: BudgetConfig) -> Optional[list[Optional[int]]]:
    """[min, max] thinking tokens the budget asks for, which Control checks across cells of one method
    (s1x/report/table.py); None where it sets no bound in tokens: none, ignore, step- and class-conditional, and
    scale, whose caps bound its points (its own scaling curve)."""
    if budget.mode in (BudgetMode.max, BudgetMode.token_conditional, BudgetMode.rejection):
        return [None, budget.tokens]
    return [budget.tokens, None] if budget.mode is BudgetMode.min else None


# Per-sample records go to numbered files, named in their results: a benchmark's name may hold '/', '.' or '@'.
RECORDS_DIR = "records"


def _curve_points(budget: BudgetConfig) -> list[Point]:
    """budget=scale's points in the curve's order: caps by size, then extensions."""
    return [Point(cap=cap) for cap in sorted(set(budget.caps))] + \
        [Point(extensions=k) for k in sorted(set(budget.extensions))]


def _point_results(name: str, point: Optional[Point], records: list[dict], path: str, eval_cfg: EvalConfig) -> list[Result]:
    """One benchmark's results at one point: every sample on its own (with eval.seeds, each seed's accuracy's mean
    and standard deviation too), and where questions have several samples, majority voting over the first 1, 2,
    4, ... of them (the parallel-scaling baseline)."""
    spread = {}
    if len(eval_cfg.seeds) > 1:
        per_seed = [statistics.fmean(r["correct"] for r in records if r["seed"] == seed) for seed in eval_cfg.seeds]
        spread = {"accuracy_seed_mean": statistics.fmean(per_seed), "accuracy_seed_std": statistics.stdev(per_seed)}
    results = [Result(name, point, Method.single, eval_cfg.samples, path, **summarize(records), **spread)]
    if eval_cfg.samples > 1:
        questions = len({r["id"] for r in records})
        results += [Result(name, point, Method.majority, int(votes), path, questions, vote["accuracy"],
                           vote["thinking_tokens"]) for votes, vote in majority_voting(records).items()]
    return results


def _write_records(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(exist_ok=True)
    with open(path, "w") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")


def evaluate(eval_cfg: EvalConfig, budget: BudgetConfig, extend: ExtendConfig, model_cfg: ModelConfig,
             model_path: str, out_dir: Path) -> dict:
    """Write per-sample records (records/<i>.jsonl, one file per benchmark and curve point) and metrics.json
    (typed results, s1x/evaluate/results.py) into out_dir; return the metrics."""
    fmt, engine = load_engine(model_cfg, model_path, eval_cfg)
    with engine:  # frees the model (and vLLM its KV cache and processes) before the next stage of the process
        policy = None if budget.mode is BudgetMode.scale else forcing_policy(fmt, eval_cfg, budget, extend)
        metrics: dict = {"results": [], "budget_bounds": budget_bounds(budget), "provenance": {
            "engine": eval_cfg.engine.value, "forcing": getattr(engine, "forcing", Forcing.rounds).value,  # after any fallback
            "dtype": model_cfg.dtype.value, "system_prompt": model_cfg.system_prompt,
            "chat_template": fmt.tokenizer.chat_template, "think_start": model_cfg.think_start,
            "think_end": model_cfg.think_end, "answer_start": model_cfg.answer_start,
            "versions": _versions(eval_cfg.engine),
            "python": platform.python_version(),
        }}
        results, files = [], itertools.count()
        for name in eval_cfg.benchmarks:
            loaded = benchmark(name, eval_cfg)
            metrics["provenance"].setdefault("benchmarks", {})[name] = loaded.source  # hub revision, file sha256
            rows = loaded.rows[: eval_cfg.limit]
            by_point: dict[Optional[Point], list[dict]] = {}
            for index, seed in enumerate(eval_cfg.seeds):  # each seed's samples numbered after the seed before's
                label, base = name if len(eval_cfg.seeds) == 1 else f"{name} seed {seed}", seed << 20
                if budget.mode is BudgetMode.scale:
                    curve = evaluate_curve(fmt, engine, eval_cfg, budget, extend, rows, label, base)
                    found = {point: curve[point.label] for point in _curve_points(budget)}
                else:
                    found = {None: evaluate_rows(fmt, engine, policy, rows, label, budget, eval_cfg.samples, base)}
                for point, records in found.items():
                    for record in records:
                        record["seed"], record["sample"] = seed, record["sample"] + index * eval_cfg.samples
                    by_point.setdefault(point, []).extend(records)
            for point, records in by_point.items():
                path = f"{RECORDS_DIR}/{next(files)}.jsonl"
                _write_records(out_dir / path, records)
                results += _point_results(name, point, records, path, eval_cfg)
            if budget.mode is BudgetMode.scale:
                metrics.setdefault("scaling", {})[name] = scaling_metrics(
                    [BudgetRun(r.mean_thinking_tokens, r.accuracy, None, r.point.cap) for r in results
                     if r.benchmark == name and r.method is Method.single])
        metrics["results"] = [result.to_dict() for result in results]
        (out_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    return metrics
