"""The embedded pool and benchmark: procedural problems whose thinking is computation.

Synthetic on purpose. Each problem is a chain of small steps (add or subtract, pay the next amount,
add the next digit, count a digit), each step taking the next item of the question,
with the running value written on every line of the trace, so the answer exists only once the chain
has been worked through: cut the thinking and the intermediate
results are gone, which is what lets a 135M model on a laptop show test-time scaling. It
demonstrates that s1x measures scaling, not that a small model reasons.

Chains are 2 to 10 steps long, so budgets bite at different points. The pool keeps what selection
needs: four domains in an unbalanced mix, and traces of mixed quality (plain, self-checking,
verbose, wrong, cut off) that the quality and difficulty filters act on. Questions are terse so that every
8-gram of one holds several of its random numbers: decontamination against the embedded benchmark (8-gram
overlap, as in s1) then removes only problems that are really shared, not every question of a template.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

MIN_STEPS, MAX_STEPS = 2, 10
# Enters the store keys of selections and evaluations that use the embedded pool or benchmark: bump it
# whenever the generated rows change, so stores made before do not serve the old problems.
EMBEDDED_VERSION = 2


@dataclass(frozen=True)
class Problem:
    question: str
    steps: list[str]  # one line per step, each ending with the running value
    values: list[int]  # the running value after each step
    answer: int


def _steps(rng: random.Random) -> int:
    return rng.randint(MIN_STEPS, MAX_STEPS)


def _running_sum(rng: random.Random) -> Problem:
    value = rng.randint(1, 20)
    start, ops, lines, values = value, [], [], []
    for _ in range(_steps(rng)):
        amount = rng.randint(1, 9)
        op = "-" if value - amount >= 0 and (value + amount > 40 or rng.random() < 0.5) else "+"
        new = value + amount if op == "+" else value - amount
        ops.append(f"{op}{amount}")
        lines.append(f"{value}{op}{amount}={new}")
        value = new
        values.append(new)
    question = f"Start at {start}, then {', '.join(ops)}. Result?"
    return Problem(question, lines, values, value)


def _count_digit(rng: random.Random) -> Problem:
    target = rng.randint(1, 9)
    digits = [target if rng.random() < 0.35 else rng.randint(1, 9) for _ in range(_steps(rng) + 1)]
    count, lines, values = 0, [], []
    for digit in digits:
        count += digit == target
        lines.append(f"{digit}:{count}")
        values.append(count)
    return Problem(f"How many {target}s in {''.join(map(str, digits))}?", lines, values, count)


def _payments(rng: random.Random) -> Problem:
    amounts = [rng.randint(1, 12) for _ in range(_steps(rng))]
    value = start = sum(amounts) + rng.randint(0, 15)
    lines, values = [], []
    for amount in amounts:
        lines.append(f"{value}-{amount}={value - amount}")
        value -= amount
        values.append(value)
    return Problem(f"From {start}, pay {', '.join(map(str, amounts))}. Left?", lines, values, value)


def _digit_sum(rng: random.Random) -> Problem:
    digits = [rng.randint(1, 9) for _ in range(_steps(rng) + 1)]
    value, lines, values = digits[0], [], []
    for digit in digits[1:]:
        lines.append(f"{value}+{digit}={value + digit}")
        value += digit
        values.append(value)
    return Problem(f"Sum the digits of {''.join(map(str, digits))}.", lines, values, value)


# The unbalanced mix is deliberate: `random` inherits it, a domain-uniform strategy does not.
DOMAINS: dict[str, tuple[Callable[[random.Random], Problem], float]] = {
    "running_sum": (_running_sum, 0.45),
    "count_digit": (_count_digit, 0.25),
    "payments": (_payments, 0.18),
    "digit_sum": (_digit_sum, 0.12),
}

STYLES = [("plain", 0.5), ("self_check", 0.22), ("verbose", 0.1), ("wrong", 0.12), ("truncated", 0.06)]


def _trace(problem: Problem, style: str, rng: random.Random) -> tuple[str, str, bool]:
    """Return (thinking trace, attempt text, whether the attempt is correct) for a style."""
    lines, answer = list(problem.steps), problem.answer
    if style == "self_check":
        lines += ["Wait, let me check the last step.", problem.steps[-1], "Yes."]
    elif style == "verbose":
        lines = ["Let me work through this one step at a time."] + lines + ["Hmm, that was every step.",
                                                                            f"The last value is {answer}."]
    elif style == "wrong":  # a slip in the last step
        answer = max(0, answer + rng.choice([-2, -1, 1, 2])) if answer else answer + 1
        lines[-1] = lines[-1][: max(lines[-1].rfind("="), lines[-1].rfind(":")) + 1] + str(answer)
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
