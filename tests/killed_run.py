"""`python -m s1x` that SIGKILLs its process group at a chosen moment: the kill -9 of the fault matrix.

    python -m tests.killed_run STAGE [overrides...]
STAGE select, train or eval: once the stage has written its output, before the store puts it in place (the
latest moment, when the most work is lost); report: while the run's report is written. Start it in a session
of its own.
"""
from __future__ import annotations

import os
import runpy
import signal
import sys
from pathlib import Path

import s1x.report
import s1x.store


def die(*args: object) -> None:
    os.killpg(os.getpgrp(), signal.SIGKILL)


if __name__ == "__main__":
    stage = sys.argv.pop(1)
    if stage == "report":
        s1x.report.write_report = die
    else:
        write_manifest = s1x.store.write_manifest

        def manifest_then_die(entry: Path) -> None:
            (die if entry.parent.name == stage else write_manifest)(entry)

        s1x.store.write_manifest = manifest_then_die
    runpy.run_module("s1x", run_name="__main__", alter_sys=True)
