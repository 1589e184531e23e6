"""`python -m s1x` whose second cell waits before its first stage until it is interrupted: the Ctrl-C of the fault
matrix at a moment the test knows, however fast the cells before it ran.

    python -m tests.interrupted_sweep [overrides...]
The waiting cell writes WAITING beside its store_dir, then sleeps; the test sends SIGINT once it is there.
"""
from __future__ import annotations

import runpy
import time
from pathlib import Path

import s1x.pipeline

WAITING = "cell-waiting-for-ctrl-c"
run_stages = s1x.pipeline._run_stages
started = []


def second_cell_waits(cfg, cell: dict) -> None:
    started.append(cell)
    if len(started) == 2:
        (Path(cfg.store_dir).parent / WAITING).touch()
        time.sleep(300)  # until the SIGINT: Python raises KeyboardInterrupt here
    run_stages(cfg, cell)


if __name__ == "__main__":
    s1x.pipeline._run_stages = second_cell_waits
    runpy.run_module("s1x", run_name="__main__", alter_sys=True)
