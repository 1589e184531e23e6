"""The embedded pool and benchmark: procedural problems whose thinking is computation.

Synthetic on purpose. Each problem is a chain of small steps over labelled items, "(a) +5 (b) -3 ...":
add or subtract, pay the next amount, add the next digit, count a digit. The answer exists only once
the chain has been worked through, so cutting the thinking loses it: that is what lets a 135M model on
a laptop show test-time scaling. The labels make finding an item a lookup, and a trace opens by naming
the items it runs over ("Items a to e."), which each check repeats: so what a small model gets wrong is
the work, not where the chain ends (without it, a model trained on long chains walked past the end of
short ones). It demonstrates that s1x measures scaling, not that a small model reasons.

The miniature is built to contain the mechanisms that s1's ablations probe, so that they have
something to detect:
- a first pass takes two items a line and adds their amounts in the head ("a,b 17+2=19" for +5 -3), a
  fast route that slips now and then;
- a check, opened by "Wait", re-walks the chain one item a line ("a 17+5=22"), a slower and more
  reliable route that shares no line with the pass, so it cannot be copied from it (a count finds
  the digit's items at once, "7 at d,e: 2", where the pass kept a tally); where it disagrees with the
  first pass it says so ("(not 21)"), goes on from the corrected value and states the new answer. So a
  forced "Wait" after the model's own ending buys a check that can catch a slip anywhere in the chain,
  as budget forcing does in the paper;
- long chains carry such checks more often than short ones, so selecting by length or difficulty
  (`longest`, `s1k`) picks more of them than `random` does, the paper's argument for its selection.
Which word opens a check is the pool's choice ("Wait"); whether "Hmm" or "Alternatively" do as well is
for the grid to measure. The pool also keeps what the quality filter acts on: four kinds of chain in an
unbalanced mix and traces that are verbose, wrong or cut off. A row's domain is its kind and its length
("payments/5"), so the domain-uniform strategies (`diverse`, `s1k`) cover every length: with the kind
alone, s1k's preference for long traces picked only 4-8 item chains, and the model trained on them
solved 3 % of the benchmark's 2-item chains.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

MIN_STEPS, MAX_STEPS = 2, 8  # items per chain
# Enters the store keys of selections and evaluations that use the embedded pool or benchmark: bump it
# whenever the generated rows change, so stores made before do not serve the old problems.
EMBEDDED_VERSION = 5
LABELS = "abcdefgh"  # one per item: a line names the items it takes, so finding them is a lookup
CHECK = "Wait, let me check"  # then the items it re-walks: "Wait, let me check a to e."


@dataclass(frozen=True)
class Problem:
    question: str
    start: int  # the running value before the first item (0 for a count)
    items: list[str]  # each item's effect: a signed amount ("+5", "-3") or, for a count, a digit
    values: list[int]  # the true running value after each item
    counted: str | None = None  # the digit a count looks for; None for arithmetic chains

    @property
    def answer(self) -> int:
        return self.values[-1]


def line(problem: Problem, span: range, before: int, after: int) -> str:
    """One trace line over the items in `span`. A first-pass pair adds its amounts in the head and applies
    them at once ("a,b 17+2=19" for +5 -3), a shortcut that slips; a check line takes one item and says
    what it does ("a 17+5=22"). A pair line and a check line never share a prefix, so a check cannot be
    copied from the pass: it has to be worked. A count's pair line: "a,b 8 6: 1"."""
    labels = ",".join(LABELS[i] for i in span)
    if problem.counted is not None:
        return f"{labels} {' '.join(problem.items[i] for i in span)}: {after}"
    return f"{labels} {before}{sum(int(problem.items[i]) for i in span):+d}={after}"


def _slip(value: int, rng: random.Random) -> int:
    return rng.choice([-2, -1, 1, 2]) if value > 2 else rng.choice([1, 2])


def _first_values(problem: Problem, slip_after: int, delta: int) -> list[int]:
    """The first pass's running value after each item: off by `delta` from item `slip_after` on."""
    return [v + (delta if i >= slip_after else 0) for i, v in enumerate(problem.values)]


def first_pass(problem: Problem, first: list[int]) -> list[str]:
    """The items it runs over ("Items a to e."), then two items a line, each line stating the (possibly
    slipped) running value after its pair."""
    lines = [f"Items {span_line(problem)}."]
    for i in range(0, len(problem.items), 2):
        span = range(i, min(i + 2, len(problem.items)))
        before = first[i - 1] if i else problem.start
        lines.append(line(problem, span, before, first[span[-1]]))
    return lines


def span_line(problem: Problem) -> str:
    """The items a chain runs over ("a to e"), copied from the question's last label: where the chain ends
    is read once, so a line past the last item is a visible misreading, not a guess."""
    return f"a to {LABELS[len(problem.items) - 1]}"


def check(problem: Problem, first: list[int]) -> list[str]:
    """The chain re-walked one item a line from true values; the first item where the first pass
    disagrees is marked with the value it had, and the check goes on from the corrected one. A count is
    checked by finding the digit's items at once ("7 at d,e: 2"), a lookup where the pass kept a tally."""
    opener = f"{CHECK} {span_line(problem)}."
    if problem.counted is not None:
        found = ",".join(LABELS[i] for i, item in enumerate(problem.items) if item == problem.counted) or "none"
        text = f"{problem.counted} at {found}: {problem.answer}"
        return [opener, text + (f" (not {first[-1]})" if first[-1] != problem.answer else ""),
                f"So the answer is {problem.answer}."]
    lines, flagged = [opener], False
    for i, value in enumerate(problem.values):
        text = line(problem, range(i, i + 1), problem.values[i - 1] if i else problem.start, value)
        if first[i] != value and not flagged:
            text, flagged = f"{text} (not {first[i]})", True
        lines.append(text)
    return lines + [f"So the answer is {problem.answer}."]


def _chain(question: str, start: int, amounts: list[int]) -> Problem:
    values, value = [], start
    for amount in amounts:
        value += amount
        values.append(value)
    return Problem(question, start, [f"{a:+d}" for a in amounts], values)


def _items(values) -> str:
    return " ".join(f"({label}) {value}" for label, value in zip(LABELS, values))


def _running_sum(rng: random.Random) -> Problem:
    """Mostly additions: a small model subtracts across a ten wrong about half the time (measured), and a
    chain of such steps would teach nothing but noise."""
    value = start = rng.randint(1, 20)
    amounts = []
    for _ in range(rng.randint(MIN_STEPS, MAX_STEPS)):
        amount = rng.randint(1, 9)
        down = value - amount >= 0 and (value + amount > 60 or rng.random() < 0.25)
        amounts.append(-amount if down else amount)
        value += amounts[-1]
    return _chain(f"Start at {start}. {_items(f'{a:+d}' for a in amounts)}. Result?", start, amounts)


def _payments(rng: random.Random) -> Problem:
    amounts = [rng.randint(1, 9) for _ in range(rng.randint(MIN_STEPS, MAX_STEPS))]
    start = sum(amounts) + rng.randint(0, 9)
    return _chain(f"From {start}, pay {_items(amounts)}. Left?", start, [-a for a in amounts])


def _digit_sum(rng: random.Random) -> Problem:
    digits = [rng.randint(1, 9) for _ in range(rng.randint(MIN_STEPS, MAX_STEPS))]
    return _chain(f"Add up {_items(digits)}.", 0, digits)


def _count_digit(rng: random.Random) -> Problem:
    target = rng.randint(1, 9)
    digits = [target if rng.random() < 0.35 else rng.randint(1, 9) for _ in range(rng.randint(MIN_STEPS, MAX_STEPS))]
    values, count = [], 0
    for digit in digits:
        count += digit == target
        values.append(count)
    return Problem(f"Count the {target}s: {_items(digits)}.", 0, [str(d) for d in digits], values, str(target))


# The unbalanced mix is deliberate: `random` inherits it, a domain-uniform strategy does not. A row's domain is
# its kind and its length: the subject of a chain is what it does and how far it goes.
DOMAINS: dict[str, tuple[Callable[[random.Random], Problem], float]] = {
    "running_sum": (_running_sum, 0.45),
    "count_digit": (_count_digit, 0.25),
    "payments": (_payments, 0.18),
    "digit_sum": (_digit_sum, 0.12),
}


def _style(rng: random.Random, steps: int) -> str:
    """Faulty traces at a flat rate; checks more often the longer the chain (15 % at 2 items, 63 % at 8)."""
    draw = rng.random()
    if draw < 0.1:
        return "wrong"
    if draw < 0.15:
        return "truncated"
    if rng.random() < 0.15 + 0.08 * (steps - 2):
        return "checked"
    return "verbose" if rng.random() < 0.1 else "plain"


def _trace(problem: Problem, style: str, rng: random.Random) -> tuple[str, str, bool]:
    """Return (thinking trace, attempt text, whether the attempt is correct) for a style."""
    answer, last = problem.answer, len(problem.items) - 1
    if style == "wrong":  # a slip in the last line, which nothing checks
        first = _first_values(problem, last, _slip(answer, rng))
        return "\n".join(first_pass(problem, first) + [f"So the answer is {first[-1]}."]), \
            f"The answer is $\\boxed{{{first[-1]}}}$.", False
    if style == "checked" and rng.random() < 0.5:  # half of the checks catch a slip in some pair
        pair_end = min(rng.randrange(0, len(problem.items), 2) + 1, last)
        first = _first_values(problem, pair_end, _slip(problem.values[pair_end], rng))
    else:
        first = list(problem.values)
    lines = first_pass(problem, first)
    if style == "truncated":
        return "\n".join(lines[: 1 + max(1, (len(lines) - 1) // 2)]), "", False  # the header, half the pairs
    if style == "verbose":
        lines = lines[:1] + ["Let me work through this two items at a time."] + lines[1:] + ["Hmm, that was every item."]
    lines.append(f"So the answer is {first[-1]}.")
    if style == "checked":
        lines += check(problem, first)
        if rng.random() < 0.3:  # a second check agrees: a further "Wait" keeps a right answer
            lines += check(problem, problem.values)
    return "\n".join(lines), f"The answer is $\\boxed{{{answer}}}$.", True


def generate_pool(size: int, seed: int) -> list[dict]:
    """Rows in s1x's pool schema; ids and contents depend only on (size, seed)."""
    rng = random.Random(f"s1x-embedded-chains-{seed}")
    names, weights = zip(*((name, w) for name, (_, w) in DOMAINS.items()))
    rows, seen = [], set()
    while len(rows) < size:
        domain = rng.choices(names, weights=weights)[0]
        problem = DOMAINS[domain][0](rng)
        if problem.question in seen:
            continue
        seen.add(problem.question)
        style = _style(rng, len(problem.items))
        trace, attempt, correct = _trace(problem, style, rng)
        rows.append({
            "id": f"embedded-{seed}-{len(rows):05d}",
            "question": problem.question,
            "solution": "\n".join(check(problem, problem.values)[1:-1]),
            "answer": str(problem.answer),
            "trace": trace,
            "attempt": attempt,
            "domain": f"{domain}/{len(problem.items)}",
            "source": f"embedded/{style}",
            "steps": len(problem.items),
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
