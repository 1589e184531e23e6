"""A Python process that has imported what an s1x run imports (torch, transformers, Hydra, s1x's stages) and forks
one child per command, which then runs `python -m MODULE ARGS` as a new interpreter would: its own Hydra state,
logging, working directory, environment, output files, session if asked, and exit code. `tests/conftest.py`'s
run_s1x and run_module send commands here, so that a CLI test pays for its stage work and not for ~5 s of imports
each time.

    python -m tests.warm_cli     (reads one JSON command a line; answers {"pid"} at the fork, {"returncode"} at the end)

Nothing here may start a thread before forking (torch's thread pools start at the first tensor operation), and
the libraries' variables read at import time (HF_*) are the ones this process started with: run_module runs
commands that set such variables in a new interpreter instead, as it does those that ask for one (warm=False).
"""
from __future__ import annotations

import atexit
import importlib
import json
import os
import runpy
import sys
import threading

WARM_MODULES = ("torch", "transformers", "hydra", "omegaconf", "pandas", "matplotlib.pyplot", "s1x.models",
                "s1x.pipeline", "s1x.train.stage", "s1x.evaluate.stage", "s1x.report", "s1x.terminal")


def run_command(command: dict) -> int:
    """In the forked child: become `python -m MODULE *args` in `cwd` with `env`, writing to the files named."""
    if command["new_session"]:
        os.setsid()
    os.chdir(command["cwd"])
    os.environ.clear()
    os.environ.update(command["env"])
    for fd, (path, mode) in enumerate([(os.devnull, os.O_RDONLY), (command["stdout"], os.O_WRONLY),
                                       (command["stderr"], os.O_WRONLY)]):
        os.dup2(os.open(path, mode), fd)
    sys.argv = [sys.argv[0], *command["args"]]
    try:
        runpy.run_module(command["module"], run_name="__main__", alter_sys=True)
    except SystemExit as end:
        if end.code is None or isinstance(end.code, int):
            return end.code or 0
        print(end.code, file=sys.stderr)
        return 1
    except BaseException:
        sys.excepthook(*sys.exc_info())
        return 1
    return 0


def end(code: int) -> None:
    """End the child as the interpreter ends: wait for its threads, run its atexit handlers (logging's flush among
    them), flush. Then exit without tearing the imported modules down, which takes ~1.5 s and nobody reads."""
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> int:
    for module in WARM_MODULES:
        importlib.import_module(module)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            end(run_command(json.loads(line)))
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
