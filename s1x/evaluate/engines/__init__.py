"""Generation engines behind one protocol, `Engine`: `hf` (transformers) and `vllm`, each with all of its own forcing code.

An engine holds a model (and vLLM its KV cache and processes) until `close`; the stages use it as a context
manager, so at most one engine is alive per process. Sampling is seeded per call: rejection sampling redraws
with another seed without touching the engine.
"""
from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

from s1x.evaluate.budget import Request, SampleState

OnRound = Callable[[int], None]  # gets the number of samples done whenever it grows


@runtime_checkable
class Engine(Protocol):
    def generate(self, requests: list[Request], seed: int = 0) -> list[list[int]]:
        """One round: new token ids per request, through the first of its stop ids (included) or its token limit.
        `seed` seeds sampling (ignored by greedy decoding)."""
        ...

    def force(self, states: list[SampleState], seed: int = 0, on_round: OnRound = lambda done: None) -> None:
        """Budget forcing of whole samples, until every state is done: the decisions of `budget.run_forcing`
        over `generate` and what the mode measures (`entropy`, `confidences`), however the engine serves them."""
        ...

    def entropy(self, contexts: list[list[int]]) -> list[float]:
        """The entropy (nats) of the model's next-token distribution after each context, at temperature 1
        (budget=entropy's decisions)."""
        ...

    def confidences(self, contexts: list[list[int]], starts: list[int], top_k: int) -> list[list[float]]:
        """Each context's token confidences from position `start` on: minus the mean log-probability (at
        temperature 1) of the top_k candidates where each token was drawn (budget=deepconf's)."""
        ...

    def close(self) -> None:
        """Free the model and its KV cache now; the engine is of no further use."""
        ...

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
