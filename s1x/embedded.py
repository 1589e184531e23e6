"""The embedded pool and benchmark: verifiable problems that s1x generates itself from a seed.

They let every stage run with no hub and no GPU, and they are shaped so that the selection
strategies differ for a reason: six domains in an unbalanced mix, traces whose length grows
with the number of steps and with self-checks, and a share of poor traces (wrong arithmetic,
cut off, or missing the answer) that a quality filter should drop.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable


@dataclass(frozen=True)
class Problem:
    question: str
    steps: list[str]  # a correct step-by-step derivation
    checks: list[str]  # a self-check of the result
    answer: str


def _arithmetic(rng: random.Random) -> Problem:
    terms = [rng.randint(2, 99) for _ in range(rng.randint(2, 5))]
    ops = [rng.choice("+-") for _ in terms[1:]]
    expr = str(terms[0]) + "".join(f" {op} {t}" for op, t in zip(ops, terms[1:]))
    steps, total = [], terms[0]
    for op, t in zip(ops, terms[1:]):
        new = total + t if op == "+" else total - t
        steps.append(f"{total} {op} {t} = {new}.")
        total = new
    checks = [f"Adding the positive terms and subtracting the others again gives {total}."]
    return Problem(f"Compute {expr}.", steps, checks, str(total))


def _algebra(rng: random.Random) -> Problem:
    a, x, b = rng.randint(2, 12), rng.randint(-15, 20), rng.randint(-30, 30)
    c = a * x + b
    steps = [
        f"We solve {a}x + {b} = {c}." if b >= 0 else f"We solve {a}x - {-b} = {c}.",
        f"Subtract {b} from both sides: {a}x = {c - b}." if b >= 0 else f"Add {-b} to both sides: {a}x = {c - b}.",
        f"Divide by {a}: x = {x}.",
    ]
    checks = [f"Check: {a} * {x} + {b} = {a * x} + {b} = {c}. Correct."]
    lhs = f"{a}x + {b}" if b >= 0 else f"{a}x - {-b}"
    return Problem(f"Solve for x: {lhs} = {c}.", steps, checks, str(x))


def _number_theory(rng: random.Random) -> Problem:
    if rng.random() < 0.5:
        n, m = rng.randint(100, 9999), rng.randint(3, 29)
        q, r = divmod(n, m)
        steps = [f"Divide {n} by {m}.", f"{m} * {q} = {m * q}.", f"{n} - {m * q} = {r}."]
        checks = [f"Check: {m} * {q} + {r} = {n}, and 0 <= {r} < {m}. Correct."]
        return Problem(f"What is the remainder when {n} is divided by {m}?", steps, checks, str(r))
    a, b = rng.randint(12, 400), rng.randint(12, 400)
    steps, x, y = [], max(a, b), min(a, b)
    while y:
        steps.append(f"{x} = {x // y} * {y} + {x % y}.")
        x, y = y, x % y
    checks = [f"Check: {a} / {x} = {a // x} and {b} / {x} = {b // x}, both whole numbers."]
    return Problem(f"Find the greatest common divisor of {a} and {b}.", ["Use the Euclidean algorithm."] + steps, checks, str(x))


def _geometry(rng: random.Random) -> Problem:
    kind = rng.choice(["rectangle", "triangle", "hypotenuse"])
    if kind == "rectangle":
        w, h = rng.randint(2, 40), rng.randint(2, 40)
        steps = [f"The area of a rectangle is width times height.", f"{w} * {h} = {w * h}."]
        return Problem(f"A rectangle is {w} units wide and {h} units tall. What is its area?", steps,
                       [f"Check: {w * h} / {w} = {h}. Correct."], str(w * h))
    if kind == "triangle":
        b, h = 2 * rng.randint(1, 25), rng.randint(2, 40)
        steps = ["The area of a triangle is half the base times the height.", f"{b} * {h} = {b * h}.", f"{b * h} / 2 = {b * h // 2}."]
        return Problem(f"A triangle has base {b} and height {h}. What is its area?", steps,
                       [f"Check: 2 * {b * h // 2} / {b} = {h}. Correct."], str(b * h // 2))
    p, q = rng.choice([(3, 4), (5, 12), (8, 15), (7, 24), (20, 21)])
    k = rng.randint(1, 6)
    a, b, c = k * p, k * q, k * math.hypot(p, q)
    steps = ["By the Pythagorean theorem, c^2 = a^2 + b^2.", f"{a}^2 + {b}^2 = {a * a} + {b * b} = {a * a + b * b}.",
             f"c = sqrt({a * a + b * b}) = {int(c)}."]
    return Problem(f"A right triangle has legs {a} and {b}. How long is its hypotenuse?", steps,
                   [f"Check: {int(c)}^2 = {int(c) ** 2}. Correct."], str(int(c)))


def _combinatorics(rng: random.Random) -> Problem:
    n = rng.randint(4, 14)
    k = rng.randint(2, min(5, n - 1))
    steps = [f"Choosing {k} of {n} items without order gives C({n}, {k}) = {n}! / ({k}! * {n - k}!).",
             f"The numerator product is {' * '.join(str(n - i) for i in range(k))} = {math.perm(n, k)}.",
             f"Divide by {k}! = {math.factorial(k)}: {math.perm(n, k)} / {math.factorial(k)} = {math.comb(n, k)}."]
    checks = [f"Check with symmetry: C({n}, {n - k}) = {math.comb(n, n - k)}, the same. Correct."]
    return Problem(f"In how many ways can a committee of {k} be chosen from {n} people?", steps, checks, str(math.comb(n, k)))


def _probability(rng: random.Random) -> Problem:
    faces = rng.choice([4, 6, 8, 10, 12, 20])
    target = rng.randint(3, 2 * faces - 1)
    ways = sum(1 for i in range(1, faces + 1) for j in range(1, faces + 1) if i + j == target)
    p = Fraction(ways, faces * faces)
    steps = [f"Two dice give {faces * faces} equally likely outcomes.",
             f"The pairs summing to {target} number {ways}.",
             f"The probability is {ways}/{faces * faces} = {p}."]
    checks = [f"Check: listing first dice values that leave a second value between 1 and 6 gives {ways} again."]
    return Problem(f"Two fair {faces}-sided dice are rolled. What is the probability that the sum is {target}? "
                   "Give the answer as a fraction.", steps, checks, str(p))


# The unbalanced mix is deliberate: `random` inherits it, a domain-uniform strategy does not.
DOMAINS: dict[str, tuple[Callable[[random.Random], Problem], float]] = {
    "arithmetic": (_arithmetic, 0.38),
    "algebra": (_algebra, 0.22),
    "number_theory": (_number_theory, 0.16),
    "geometry": (_geometry, 0.12),
    "combinatorics": (_combinatorics, 0.07),
    "probability": (_probability, 0.05),
}

OPENINGS = ["Let me work through this.", "Let's think step by step.", "First, restate the problem."]


def _trace(problem: Problem, style: str, rng: random.Random) -> tuple[str, str, bool]:
    """Return (thinking trace, attempt text, whether the attempt is correct) for a style."""
    lines = [rng.choice(OPENINGS)] + list(problem.steps)
    answer, correct = problem.answer, True
    if style == "self_check":
        lines += ["Wait, let me double-check."] + problem.checks
    elif style == "verbose":
        lines = [lines[0], f"The question asks: {problem.question}"] + problem.steps
        lines += ["Hmm, let me redo the last step to be sure.", problem.steps[-1]] + ["Wait, let me double-check."] + problem.checks
    elif style == "wrong":
        answer, correct = str(int(Fraction(problem.answer)) + rng.choice([-3, -1, 1, 2, 10])), False
        lines[-1] = f"So the result is {answer}."
    elif style == "truncated":
        lines = lines[: max(1, len(lines) // 2)]
        return "\n".join(lines), "", False
    lines.append(f"So the answer is {answer}.")
    return "\n".join(lines), f"The answer is $\\boxed{{{answer}}}$.", correct


STYLES = [("plain", 0.45), ("self_check", 0.25), ("verbose", 0.12), ("wrong", 0.12), ("truncated", 0.06)]


def _draw(rng: random.Random, weighted: list[tuple[str, float]]) -> str:
    names, weights = zip(*weighted)
    return rng.choices(names, weights=weights)[0]


def generate_pool(size: int, seed: int) -> list[dict]:
    """Rows in s1x's pool schema; ids and contents depend only on (size, seed)."""
    rng = random.Random(f"s1x-embedded-pool-{seed}")
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
            "answer": problem.answer,
            "trace": trace,
            "attempt": attempt,
            "domain": domain,
            "source": f"embedded/{style}",
            "trace_correct": correct,
        })
    return rows


def generate_benchmark(size: int, seed: int) -> list[dict]:
    """Benchmark rows (id, question, answer, domain) from their own seed stream.

    Selection drops pool rows whose question is in an evaluated benchmark, so these stay held out.
    """
    return [{"id": r["id"].replace("embedded", "embedded-bench"), "question": r["question"],
             "answer": r["answer"], "domain": r["domain"]} for r in generate_pool(size, seed=10_000 + seed)]
