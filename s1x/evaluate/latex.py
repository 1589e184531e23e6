"""\\boxed{} contents, for the gold answers inside solution texts (benchmarks) and for grading (no sympy here,
so planning a sweep stays light)."""
from __future__ import annotations

BOXED = "\\boxed{"


def boxed(text: str) -> list[str]:
    """The contents of every \\boxed{...} in text, braces balanced."""
    found, start = [], text.find(BOXED)
    while start != -1:
        depth, i = 1, start + len(BOXED)
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth:
            break
        found.append(text[start + len(BOXED): i - 1])
        start = text.find(BOXED, i)
    return found
