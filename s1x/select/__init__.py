"""Select: a training subset drawn from a pool of reasoning traces (random, diverse, longest, s1k, full).

Takes the data config, the pool's rows and the evaluated benchmarks' questions; writes selection.jsonl and manifest.json.
"""
from s1x.select.stage import select

__all__ = ["select"]
