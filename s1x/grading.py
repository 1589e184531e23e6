"""Answer grading with math-verify, on the answer part only.

math-verify's timeouts use signal.alarm, so grading must run in the main thread (or a worker
process), never in a thread.
"""
from __future__ import annotations

from math_verify import parse, verify


def grade_math(answer_text: str, gold: str) -> tuple[str, bool]:
    """(extracted answer, correct) for a model's answer text against a gold answer string."""
    predicted = parse(answer_text)
    if not predicted:
        return "", False
    reference = parse(f"${gold}$")
    return str(predicted[-1]), bool(verify(reference, predicted))
