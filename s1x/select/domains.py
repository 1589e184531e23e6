"""Domain labels for the diversity stage: a pool column where there is one, else a classifier.

`keyword` is cheap and offline; `model` asks a language model through s1x's engine to pick
a domain from the list, as s1 did with Claude over the MSC domains.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Callable

from s1x.evaluate.budget import Request

OTHER = "other"
KEYWORDS: dict[str, tuple[str, ...]] = {
    "number_theory": ("prime", "divisor", "divisible", "gcd", "greatest common", "remainder", "modulo", "mod",
                      "integer", "digit", "digits", "lcm", "factor", "factors"),
    "combinatorics": ("ways", "arrangements", "arrange", "choose", "chosen", "committee", "permutation",
                      "combinations", "subsets", "coloring", "tournament", "graph"),
    "probability": ("probability", "random", "randomly", "dice", "die", "coin", "expected", "chance"),
    "geometry": ("triangle", "circle", "angle", "polygon", "square", "rectangle", "area", "perimeter", "radius",
                 "hypotenuse", "perpendicular", "parallel", "tangent", "diameter"),
    "algebra": ("solve", "equation", "polynomial", "roots", "function", "inequality", "variable", "quadratic"),
    "calculus": ("derivative", "integral", "limit", "differentiate", "converge", "series"),
    "linear_algebra": ("matrix", "vector", "vectors", "determinant", "eigenvalue", "eigenvalues"),
    "statistics": ("mean", "median", "variance", "deviation", "average"),
    "physics": ("velocity", "force", "mass", "energy", "electron", "wavelength", "telescope", "orbit",
                "momentum", "photon", "temperature", "star"),
    "chemistry": ("mole", "reaction", "molecule", "atom", "bond", "ph", "solution", "compound"),
    "economics": ("price", "demand", "supply", "market", "profit", "consumer", "firm"),
    "arithmetic": ("compute", "sum", "product", "percent", "fraction", "simplify", "evaluate"),
}
_WORD = re.compile(r"[a-z]+")


def classify_keywords(questions: list[str]) -> list[str]:
    labels = []
    for question in questions:
        words = Counter(_WORD.findall(question.lower()))
        scores = {domain: sum(words[k] for k in keys if " " not in k) + sum(question.lower().count(k) for k in keys if " " in k)
                  for domain, keys in KEYWORDS.items()}
        best = max(scores, key=lambda d: scores[d])
        labels.append(best if scores[best] > 0 else OTHER)
    return labels


def classification_prompt(question: str, domains: list[str]) -> str:
    listing = "\n".join(f"{i}. {d}" for i, d in enumerate(domains, 1))
    return (f"Which domain does this question belong to?\n{listing}\n\nQuestion: {question}\n\n"
            "Reply with the domain's number only.")


def classify_with_model(questions: list[str], domains: list[str], encode_chat: Callable[[str], list[int]],
                        generate: Callable[[list[Request]], list[list[int]]], decode: Callable[[list[int]], str]) -> list[str]:
    """Ask a model (greedy, a few tokens) for each question's domain number; unparseable answers are OTHER."""
    outputs = generate([Request(encode_chat(classification_prompt(q, domains)), 6, ()) for q in questions])
    labels = []
    for ids in outputs:
        match = re.search(r"\d+", decode(ids))
        index = int(match.group()) - 1 if match else -1
        labels.append(domains[index] if 0 <= index < len(domains) else OTHER)
    return labels
