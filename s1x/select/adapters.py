"""Schema adapters: each maps one publisher's row to s1x's pool row.

s1x row: id, question, solution, answer, trace, attempt, domain, source, base_correct (the
share of base-model samples that solved it, when the pool carries one), plus anything kept
for inspection. Adapters return None for fields their schema does not have; the quality
filter, not the adapter, decides what to drop.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Optional

Row = dict[str, Any]

REQUIRED: dict[str, tuple[str, ...]] = {
    "s1x": ("id", "question", "answer", "trace"),
    "s1k": ("question", "solution", "thinking_trajectories", "attempt", "source_type"),
    "math": ("problem", "solution", "answer", "subject"),
    "olympiadbench": ("question", "solution", "final_answer", "subfield"),
    "minerva": ("problem", "solution", "type"),
    "aqua": ("question", "options", "rationale", "correct"),
    "college_math": ("question", "answer", "data_topic"),
    "math_cot": ("question", "code", "score", "answer"),
}


def last_boxed(text: str) -> Optional[str]:
    """The content of the last \\boxed{...} in text (braces balanced), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, begin = 0, start + len("\\boxed{")
    for i in range(begin, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            if depth == 0:
                return text[begin:i]
            depth -= 1
    return None


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else (None if isinstance(value, list) else value)


def _s1x(row: Row) -> Row:
    return dict(row)


def _s1k(row: Row) -> Row:
    # s1K / s1K-1.1 / the 59K pool: thinking_trajectories is a list holding one trace.
    return {"question": row["question"], "solution": row["solution"], "answer": row["solution"],
            "trace": _first(row["thinking_trajectories"]), "attempt": row["attempt"],
            "domain": row.get("domain"), "source": row["source_type"], "cot_type": row.get("cot_type")}


def _math(row: Row) -> Row:
    return {"id": row.get("unique_id"), "question": row["problem"], "solution": row["solution"],
            "answer": row["answer"], "trace": row["solution"], "attempt": None, "domain": row["subject"],
            "source": "math", "level": row.get("level")}


def _olympiadbench(row: Row) -> Row:
    context = row.get("context")
    question = f"{context}\n\n{row['question']}" if context else row["question"]
    return {"id": f"olympiadbench-{row['id']}" if "id" in row else None, "question": question,
            "solution": _first(row["solution"]), "answer": _first(row["final_answer"]),
            "trace": _first(row["solution"]), "attempt": None, "domain": row["subfield"], "source": "olympiadbench"}


def _minerva(row: Row) -> Row:
    return {"question": row["problem"], "solution": row["solution"], "answer": last_boxed(row["solution"]),
            "trace": row["solution"], "attempt": None, "domain": row["type"], "source": "minerva_math"}


def _aqua(row: Row) -> Row:
    options = "\n".join(row["options"])
    return {"question": f"{row['question']}\nOptions:\n{options}", "solution": row["rationale"],
            "answer": row["correct"], "trace": row["rationale"], "attempt": None, "domain": None, "source": "aqua"}


def _college_math(row: Row) -> Row:
    # No worked solutions: these rows exist so the quality filter has traceless rows to drop.
    return {"question": row["question"], "solution": None, "answer": row["answer"], "trace": None,
            "attempt": None, "domain": re.sub(r"^college_math\.", "", row["data_topic"]), "source": "college_math"}


def _math_cot(row: Row) -> Row:
    # Eight sampled model traces with verdicts: the first is the trace, the verdicts the difficulty signal.
    scores = row["score"]
    return {"question": row["question"], "solution": row.get("solution"), "answer": row["answer"],
            "trace": _first(row["code"]), "attempt": _first(row.get("pred")), "domain": None,
            "source": "math_cot", "base_correct": sum(bool(s) for s in scores) / len(scores), "level": row.get("level")}


ADAPTERS: dict[str, Callable[[Row], Row]] = {
    "s1x": _s1x, "s1k": _s1k, "math": _math, "olympiadbench": _olympiadbench, "minerva": _minerva,
    "aqua": _aqua, "college_math": _college_math, "math_cot": _math_cot,
}
