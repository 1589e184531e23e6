"""Answer grading with math-verify, on the answer part only.

math-verify's timeouts use signal.alarm, so grading must run in the main thread (or a worker
process), never in a thread.
"""
from __future__ import annotations

import re

from math_verify import parse, verify

TIMEOUT_SECONDS = 5  # per parse / verify: one pathological answer must not hang a job
LETTER = re.compile(r"\\boxed\{\s*\(?([A-D])\)?\s*\}|\(([A-D])\)|\b([A-D])\b")


def grade_math(answer_text: str, gold: str) -> tuple[str, bool]:
    """(extracted answer, correct) for a model's answer text against a gold answer string."""
    predicted = parse(answer_text, parsing_timeout=TIMEOUT_SECONDS)
    if not predicted:
        return "", False
    reference = parse(f"${gold}$", parsing_timeout=TIMEOUT_SECONDS)
    return str(predicted[-1]), bool(verify(reference, predicted, timeout_seconds=TIMEOUT_SECONDS))


def grade_choice(answer_text: str, gold_letter: str) -> tuple[str, bool]:
    """The last choice letter in the answer (boxed, parenthesised or standalone) against the gold letter."""
    matches = LETTER.findall(answer_text)
    letter = next((group for group in matches[-1] if group), "") if matches else ""
    return letter, letter == gold_letter


def grade(kind: str, answer_text: str, gold: str) -> tuple[str, bool]:
    return grade_choice(answer_text, gold) if kind == "choice" else grade_math(answer_text, gold)
