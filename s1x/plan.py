"""What a run can tell apart, said while planning, before anything runs: per benchmark, the answers each cell
gives (its rows, cut at eval.limit, times eval.samples and eval.seeds) and the smallest accuracy difference a paired test on
them detects (s1x/report/paired.py). AIME24's 30 problems with one sample detect about 25 points: a sweep that
hopes to rank two strategies 5 points apart there is told so before it spends its hours.
"""
from __future__ import annotations

import logging
from typing import Sequence

from s1x.config import Config
from s1x.evaluate.benchmarks import benchmark_spec
from s1x.report.paired import detectable_difference

log = logging.getLogger("s1x")
DISCORDANCE = 0.25  # the share of answers two compared cells disagree on, assumed: about what s1x's grids show
# Above this, a sweep is warned: the paper's own ablations differ by 3 to 13 points (its Tables 2 and 4).
WARN_ABOVE = 0.10


def detectable_lines(cfg: Config) -> list[tuple[str, float]]:
    """Per benchmark of the cell: its line for the plan, and the difference it detects (None: size unknown)."""
    found = []
    for name in cfg.eval.benchmarks:
        rows = benchmark_spec(name, cfg.eval).rows
        if rows is None:
            found.append((f"plan: {name}: size unknown (give its `rows:`), so no detectable difference", None))
            continue
        problems = min(rows, cfg.eval.limit) if cfg.eval.limit else rows
        repeats = cfg.eval.samples * len(cfg.eval.seeds)
        difference = detectable_difference(problems * repeats, DISCORDANCE)
        found.append((f"plan: {name}: {problems} problems x {repeats} sample(s) and seed(s): a paired test detects about "
                      f"{100 * difference:.0f} points between two cells (80 % power, p < 0.05, with "
                      f"{100 * DISCORDANCE:.0f} % of answers discordant)", difference))
    return found


def say_what_is_detectable(cells: Sequence[Config]) -> None:
    """Log each distinct line once; in a sweep, warn where only large differences could show."""
    said = set()
    for cfg in cells:
        for line, difference in detectable_lines(cfg):
            if line in said:
                continue
            said.add(line)
            if len(cells) > 1 and difference is not None and difference > WARN_ABOVE:
                log.warning("%s; smaller differences between this sweep's cells will read as no detectable difference", line)
            else:
                log.info(line)
