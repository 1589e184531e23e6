"""Evaluation benchmarks by name: each loader returns rows with id, question, answer."""
from __future__ import annotations

from typing import Callable

from s1x.embedded import generate_benchmark

EMBEDDED_BENCHMARK_SIZE = 100


def _embedded() -> list[dict]:
    return generate_benchmark(EMBEDDED_BENCHMARK_SIZE, seed=0)


BENCHMARKS: dict[str, Callable[[], list[dict]]] = {
    "embedded": _embedded,
}


def load_benchmark(name: str) -> list[dict]:
    if name not in BENCHMARKS:
        raise KeyError(f"unknown benchmark {name!r}; known: {sorted(BENCHMARKS)}")
    return BENCHMARKS[name]()
