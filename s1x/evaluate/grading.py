"""Answer grading, on the answer part only (never the thinking), with a record of how each verdict was reached.

Kinds: `math` (math-verify), `choice` (the last choice letter, A-Z), `exact` (normalised string equality).
Each verdict names its method and whether math-verify timed out, so a person can audit it
(`python -m s1x.report --audit CELL_DIR`). math-verify (0.9.0) misreads some answer forms; s1x rewrites
them first and names each rewrite in the method ("math-verify+last-boxed"); tests/test_grading.py pins them:
- several \\boxed{} in one answer: math-verify reads them as one set ({3, 5}); s1x grades the last box,
  unless the gold itself is a set of several answers (`last-boxed`);
- bold: `**3/4**` reads as 3 and `**73**` extracts `73**`; s1x drops the `**` (`unbold`);
- LaTeX outside math mode (`\\dfrac{3}{4}`, `\\sqrt{3}`, `1 - \\frac{1}{e}`) reads as nothing or a stray
  number; s1x grades the last line's final expression in math mode (`bare-latex`);
- `\\mathrm{e}` cuts math-verify's parse short, so `1-\\frac{1}{\\mathrm{e}}` equals `1+\\frac{1}{\\mathrm{e}}`
  (both read as 1); s1x writes it as e (`euler-e`);
- numbers compared to 6 decimal places, so 1/2^98 equals 1/2^99; s1x rejects numbers that differ
  relatively by more than RELATIVE_TOLERANCE (`numeric-guard`).

math-verify's timeouts use signal.alarm, so grading must run in the main thread (or a worker process).
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from itertools import product
from typing import Any, Callable

import sympy
from math_verify import parse, verify
from math_verify.errors import TimeoutException
from math_verify.utils import timeout

from s1x.evaluate.latex import boxed

TIMEOUT_SECONDS = 5  # per parse / comparison: one pathological answer must not hang a job
RELATIVE_TOLERANCE = 1e-5  # looser than math-verify's 6 decimals where values are near 1, far tighter for tiny ones

EULER_E = re.compile(r"\\(?:mathrm|text|operatorname)\{\s*e\s*\}|\{\\rm\s+e\}")
MATH_MODE = re.compile(r"\$|\\\(|\\\[|\\boxed")
LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
LAST_CUE = re.compile(r"[:=]|\bis\b")
ANSWER_CUE = re.compile(r"answer(?:\s+is\b|\s*:)", re.IGNORECASE)
CHOICE_TIERS = (  # most explicit first; the last match of the first tier that has one wins
    re.compile(r"\\(?:boxed|textbf)\{\s*\(?([A-Z])\)?\s*\}"),
    re.compile(r"(?i:answer)(?:\s+is)?[\s:*($]*([A-Z])\b(?!')"),
    re.compile(r"\(([A-Z])\)"),
    re.compile(r"\b(?!I\s+[a-z])([A-Z])\b(?!')"),  # standalone; not the pronoun in "I think", "I'm"
)


@dataclass(frozen=True)
class Verdict:
    extracted: str
    gold: str
    correct: bool
    method: str  # how it was decided: "math-verify[+rewrites]", "letter" or "exact"
    timed_out: bool = False  # math-verify ran out of time somewhere: the verdict may be a false negative


def _guarded(call: Callable[[], Any], default: Any) -> tuple[Any, bool]:
    """(call's result, timed out); math-verify's own answer (default) where it raises."""
    try:
        return call(), False
    except TimeoutException:  # a BaseException: math-verify would log it and answer as if it failed
        return default, True
    except Exception:
        return default, False


def _parse(text: str) -> tuple[list, bool]:
    return _guarded(lambda: parse(text, parsing_timeout=TIMEOUT_SECONDS, raise_on_error=True), [])


def _verify(reference: list, predicted: list) -> tuple[bool, bool]:
    """math-verify's any-pair comparison, one pair at a time so that a timeout is seen, not read as unequal."""
    timed_out = False
    for gold, target in product(reference, predicted):
        equal, late = _guarded(lambda: verify(gold, target, timeout_seconds=TIMEOUT_SECONDS, raise_on_error=True), False)
        timed_out |= late
        if equal:
            return True, timed_out
    return False, timed_out


def _numerically_apart(a: Any, b: Any) -> bool:
    """Both numbers, differing relatively by more than RELATIVE_TOLERANCE (at 30 digits: no float underflow)."""
    if not all(isinstance(x, sympy.Expr) and x.is_number for x in (a, b)):
        return False
    x, y = sympy.N(a, 30), sympy.N(b, 30)
    return bool(abs(x - y) > RELATIVE_TOLERANCE * max(abs(x), abs(y)))


def _rewrite(answer_text: str, gold: str, gold_is_set: bool) -> tuple[str, list[str]]:
    """The answer text as math-verify reads it right, and the names of the rewrites applied (euler-e: to the
    answer or the gold)."""
    text, fixes = EULER_E.sub("e", answer_text), []
    if EULER_E.search(answer_text + gold):
        fixes.append("euler-e")
    if "**" in text:
        text = text.replace("**", "")
        fixes.append("unbold")
    boxes = boxed(text)
    if len(boxes) > 1 and not gold_is_set:
        text = f"$\\boxed{{{boxes[-1]}}}$"
        fixes.append("last-boxed")
    elif LATEX_COMMAND.search(text) and not MATH_MODE.search(text):
        line = [line for line in text.splitlines() if line.strip()][-1]
        text = f"${LAST_CUE.split(line)[-1].strip().rstrip('.') or line}$"
        fixes.append("bare-latex")
    return text, fixes


def grade_math(answer_text: str, gold: str) -> Verdict:
    """math-verify on the rewritten answer against the gold answer string."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("math-verify's timeouts use signal.alarm: grade in the main thread or a worker process")
    reference, timed_out = _parse(f"${EULER_E.sub('e', gold)}$")
    gold_is_set = bool(reference) and isinstance(reference[0], sympy.FiniteSet) and len(reference[0]) > 1
    text, fixes = _rewrite(answer_text, gold, gold_is_set)
    predicted, parse_late = _parse(text)
    correct, verify_late = _verify(reference, predicted) if reference and predicted else (False, False)
    if correct:
        guard = timeout(TIMEOUT_SECONDS)(_numerically_apart)
        apart, guard_late = _guarded(lambda: guard(reference[0], predicted[0]), False)
        verify_late |= guard_late
        if apart:
            correct = False
            fixes.append("numeric-guard")
    return Verdict(str(predicted[-1]) if predicted else "", gold, correct, "+".join(["math-verify", *fixes]),
                   timed_out or parse_late or verify_late)


def grade_choice(answer_text: str, gold_letter: str) -> Verdict:
    """The last choice letter of the most explicit kind in the answer (boxed, after "answer", in parentheses,
    standalone) against the gold letter."""
    letter = next((matches[-1] for tier in CHOICE_TIERS if (matches := tier.findall(answer_text))), "")
    return Verdict(letter, gold_letter, letter == gold_letter, "letter")


def normalise(text: str) -> str:
    """Casefolded, whitespace collapsed, without a trailing period or a surrounding $, \\boxed{} or **."""
    text, previous = " ".join(text.split()), None
    while text != previous:
        previous, text = text, text.strip().removesuffix(".").strip()
        if len(text) >= 4 and text.startswith("**") and text.endswith("**"):
            text = text[2:-2]
        elif len(text) >= 2 and text.startswith("$") and text.endswith("$"):
            text = text[1:-1]
        elif (boxes := boxed(text)) and text == f"\\boxed{{{boxes[0]}}}":
            text = boxes[0]
    return text.casefold()


def grade_exact(answer_text: str, gold: str) -> Verdict:
    """Normalised string equality of the answer (the last \\boxed{}, else what follows the last "answer:" or
    "answer is" on its line, else the last line) and the gold."""
    boxes, cued = boxed(answer_text), ANSWER_CUE.split(answer_text)
    if boxes:
        answer = boxes[-1]
    elif len(cued) > 1:
        answer = cued[-1].strip().split("\n")[0]
    else:
        answer = ([line for line in answer_text.splitlines() if line.strip()] or [""])[-1]
    extracted = normalise(answer)
    return Verdict(extracted, gold, bool(extracted) and extracted == normalise(gold), "exact")


GRADERS = {"math": grade_math, "choice": grade_choice, "exact": grade_exact}


def grade(kind: str, answer_text: str, gold: str) -> Verdict:
    return GRADERS[kind](answer_text, gold)
