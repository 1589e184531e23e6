"""The s1 quality stage: drop rows that would teach formatting faults rather than reasoning.

Each rule is a named predicate; the first rule a row fails is the one counted, so the
counts add up to the rows dropped.
"""
from __future__ import annotations

import re
from typing import Callable

# Literal phrases, checked with `in` on lowercased text: a regex alternation over a 59K pool of
# multi-thousand-token traces took 30 s, substring checks take under one.
API_ERROR_PHRASES = ("api error", "rate limit", "internal server error", "service unavailable",
                     "traceback (most recent call last)", "<!doctype html", "request timed out")
ERROR_CODE = re.compile(r"error code: ?\d{3}")
FIGURE_REFERENCE = re.compile(
    r"(\[asy\]|\bin the (figure|diagram|image|picture|graph) (below|above|shown)|\b(figure|diagram|image|picture) "
    r"(below|above)\b|\bshown (below|above|in the (figure|diagram))|\bthe (following|adjoining|accompanying) "
    r"(figure|diagram|graph|picture)|\bsee (the )?(figure|diagram)|<image>|!\[)", re.IGNORECASE)
# Every FIGURE_REFERENCE match contains one of these: a substring pre-check spares the regex
# (which tries each alternative at every position) on the questions that cannot match.
FIGURE_WORDS = ("figure", "diagram", "image", "picture", "graph", "[asy]", "![")
MIN_TRACE_CHARS = 20
CONCLUSION_CHARS = 2000  # a finished trace states its answer near the end


def _blank(value: object) -> bool:
    return value is None or not str(value).strip()


_DROPPED = str.maketrans("", "", " \t\n\r${}")


def _normal(text: str) -> str:
    """Answer text without spacing, $, braces and \\boxed/\\text wrappers, for containment checks."""
    for wrapper in ("\\boxed", "\\text", "\\!", "\\,"):
        text = text.replace(wrapper, "")
    return text.translate(_DROPPED)


def _api_error(row: dict) -> bool:
    return any(_has_api_error(str(text).lower()) for text in (row["trace"], row.get("attempt") or ""))


def _has_api_error(text: str) -> bool:
    return any(phrase in text for phrase in API_ERROR_PHRASES) or ("error code" in text and bool(ERROR_CODE.search(text)))


def _refers_to_figure(question: str) -> bool:
    lowered = question.lower()
    return any(word in lowered for word in FIGURE_WORDS) and bool(FIGURE_REFERENCE.search(question))


RULES: dict[str, Callable[[dict], bool]] = {
    "missing_trace": lambda r: _blank(r.get("trace")) or len(str(r["trace"]).strip()) < MIN_TRACE_CHARS,
    "missing_answer": lambda r: _blank(r.get("answer")),
    "api_error": _api_error,
    "figure_reference": lambda r: _refers_to_figure(str(r["question"])),
    "unbalanced_braces": lambda r: str(r["question"]).count("{") != str(r["question"]).count("}"),
    "replacement_character": lambda r: "\ufffd" in str(r["question"]) + str(r["trace"]),
    # A trace whose conclusion never reaches the reference answer is cut off or wrong.
    "answer_not_in_trace": lambda r: _normal(str(r["answer"])) not in _normal(str(r["trace"])[-CONCLUSION_CHARS:]),
}


def quality_filter(rows: list[dict]) -> tuple[list[dict], dict[str, int]]:
    """(kept rows, {rule: rows it dropped}) in rule order."""
    counts = dict.fromkeys(RULES, 0)
    kept = []
    for row in rows:
        failed = next((name for name, rule in RULES.items() if rule(row)), None)
        if failed is None:
            kept.append(row)
        else:
            counts[failed] += 1
    return kept, counts
