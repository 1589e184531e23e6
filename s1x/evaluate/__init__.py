"""Evaluate: budget-forced generation on the benchmarks, graded, with the paper's metrics.

Takes a checkpoint and the eval, budget and extend configs; writes records/<i>.jsonl and metrics.json (typed results).
"""
__all__ = ["evaluate"]


def __getattr__(name: str):
    # The stage imports torch and transformers (seconds); planning a sweep imports this package without them.
    if name == "evaluate":
        from s1x.evaluate.stage import evaluate

        return evaluate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
