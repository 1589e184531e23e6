"""The embedded pool and benchmark: procedural problems whose thinking is computation.

Synthetic on purpose. Each problem is a chain of small steps over labelled items, "(a) +5 (b) -3 ...":
add or subtract, pay the next amount, add the next digit, count a digit. Each trace line names its
item and ends with the running value, so the answer exists only once the chain has been worked
through: cut the thinking and the intermediate results are gone, which is what lets a 135M model on
a laptop show test-time scaling. The labels make finding the next item a lookup, not a search among
repeated values, so what a small model gets wrong is the work, not the bookkeeping. It demonstrates
that s1x measures scaling, not that a small model reasons.

Chains are 2 to 8 steps long, so budgets bite at different points. The pool keeps what selection
needs: four domains in an unbalanced mix, and traces of mixed quality (plain, self-checking,
verbose, wrong, cut off) that the quality and difficulty filters act on. Decontamination against the
embedded benchmark (8-gram overlap, as in s1) drops about a tenth of the pool: questions whose runs of
labelled items coincide with a benchmark question's.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

MIN_STEPS, MAX_STEPS = 2, 8
# Enters the store keys of selections and evaluations that use the embedded pool or benchmark: bump it
# whenever the generated rows change, so stores made before do not serve the old problems.
EMBEDDED_VERSION = 3
LABELS = "abcdefghijk"  # one per item: the trace names the item it takes, so finding it is a lookup


@dataclass(frozen=True)
class Problem:
    question: str
    steps: list[str]  # one line per step: the item's label, then the step ending with the running value
    values: list[int]  # the running value after each step
    answer: int


def _steps(rng: random.Random) -> int:
    return rng.randint(MIN_STEPS, MAX_STEPS)


def _items(values: list[str]) -> str:
    return " ".join(f"({label}) {value}" for label, value in zip(LABELS, values))


def _running_sum(rng: random.Random) -> Problem:
    value = start = rng.randint(1, 20)
    ops, lines, values = [], [], []
    for label in LABELS[:_steps(rng)]:
        amount = rng.randint(1, 9)
        op = "-" if value - amount >= 0 and (value + amount > 40 or rng.random() < 0.5) else "+"
        new = value + amount if op == "+" else value - amount
        ops.append(f"{op}{amount}")
        lines.append(f"{label} {value}{op}{amount}={new}")
        value = new
        values.append(new)
    return Problem(f"Start at {start}. {_items(ops)}. Result?", lines, values, value)


def _count_digit(rng: random.Random) -> Problem:
    target = rng.randint(1, 9)
    digits = [target if rng.random() < 0.35 else rng.randint(1, 9) for _ in range(_steps(rng) + 1)]
    count, lines, values = 0, [], []
    for label, digit in zip(LABELS, digits):
        count += digit == target
        lines.append(f"{label} {digit}: {count}")
        values.append(count)
    return Problem(f"Count the {target}s: {_items(map(str, digits))}.", lines, values, count)


def _payments(rng: random.Random) -> Problem:
    amounts = [rng.randint(1, 12) for _ in range(_steps(rng))]
    value = start = sum(amounts) + rng.randint(0, 15)
    lines, values = [], []
    for label, amount in zip(LABELS, amounts):
        lines.append(f"{label} {value}-{amount}={value - amount}")
        value -= amount
        values.append(value)
    return Problem(f"From {start}, pay {_items(map(str, amounts))}. Left?", lines, values, value)


def _digit_sum(rng: random.Random) -> Problem:
    digits = [rng.randint(1, 9) for _ in range(_steps(rng) + 1)]
    value, lines, values = 0, [], []
    for label, digit in zip(LABELS, digits):
        lines.append(f"{label} {value}+{digit}={value + digit}")
        value += digit
        values.append(value)
    return Problem(f"Add up {_items(map(str, digits))}.", lines, values, value)


# The unbalanced mix is deliberate: `random` inherits it, a domain-uniform strategy does not.
DOMAINS: dict[str, tuple[Callable[[random.Random], Problem], float]] = {
    "running_sum": (_running_sum, 0.45),
    "count_digit": (_count_digit, 0.25),
    "payments": (_payments, 0.18),
    "digit_sum": (_digit_sum, 0.12),
}

STYLES = [("plain", 0.42), ("self_check", 0.3), ("verbose", 0.1), ("wrong", 0.12), ("truncated", 0.06)]


def _with_value(line: str, value: int) -> str:
    """A step line with another running value (a slip)."""
    head = line.rsplit("=", 1)[0] + "=" if "=" in line else line.rsplit(": ", 1)[0] + ": "
    return head + str(value)


def _slipped(value: int, rng: random.Random) -> int:
    return value + rng.choice([-2, -1, 1, 2]) if value > 2 else value + rng.choice([1, 2])


def _trace(problem: Problem, style: str, rng: random.Random) -> tuple[str, str, bool]:
    """Return (thinking trace, attempt text, whether the attempt is correct) for a style.

    A self-check re-derives the last step after "Wait" and keeps or corrects the answer, so a forced "Wait"
    at the end of thinking has a use the model has seen: checking, not starting over."""
    lines, answer, last = list(problem.steps), problem.answer, problem.steps[-1]
    if style == "self_check":  # one or two checks; now and then the first one catches a slip
        said = _slipped(answer, rng) if rng.random() < 0.2 else answer
        lines[-1] = _with_value(last, said)
        lines.append(f"So the answer is {said}.")
        for check in range(rng.randint(1, 2)):
            lines += [f"Wait, let me check {last}. " + ("Yes." if check or said == answer else f"Not {said}."),
                      f"So the answer is {answer}."]
        lines.pop()  # the closing answer line is added below
    elif style == "verbose":
        lines = ["Let me work through this one item at a time."] + lines + ["Hmm, that was every item."]
    elif style == "wrong":  # a slip in the last step
        answer = _slipped(answer, rng)
        lines[-1] = _with_value(last, answer)
    elif style == "truncated":
        return "\n".join(lines[: max(1, len(lines) // 2)]), "", False
    lines.append(f"So the answer is {answer}.")
    return "\n".join(lines), f"The answer is $\\boxed{{{answer}}}$.", style != "wrong"


def _draw(rng: random.Random, weighted: list[tuple[str, float]]) -> str:
    names, weights = zip(*weighted)
    return rng.choices(names, weights=weights)[0]


def generate_pool(size: int, seed: int) -> list[dict]:
    """Rows in s1x's pool schema; ids and contents depend only on (size, seed)."""
    rng = random.Random(f"s1x-embedded-chains-{seed}")
    domains = [(name, w) for name, (_, w) in DOMAINS.items()]
    rows, seen = [], set()
    while len(rows) < size:
        domain = _draw(rng, domains)
        problem = DOMAINS[domain][0](rng)
        if problem.question in seen:
            continue
        seen.add(problem.question)
        style = _draw(rng, STYLES)
        trace, attempt, correct = _trace(problem, style, rng)
        rows.append({
            "id": f"embedded-{seed}-{len(rows):05d}",
            "question": problem.question,
            "solution": "\n".join(problem.steps),
            "answer": str(problem.answer),
            "trace": trace,
            "attempt": attempt,
            "domain": domain,
            "source": f"embedded/{style}",
            "steps": len(problem.steps),
            "trace_correct": correct,
        })
    return rows


def generate_benchmark(size: int, seed: int) -> list[dict]:
    """Benchmark rows (id, question, answer, domain, steps) from their own seed stream.

    Selection drops pool rows whose question is in an evaluated benchmark, so these stay held out.
    """
    return [{"id": r["id"].replace("embedded", "embedded-bench"), "question": r["question"],
             "answer": r["answer"], "domain": r["domain"], "steps": r["steps"]}
            for r in generate_pool(size, seed=10_000 + seed)]
