"""Planning and submission overhead of a 100-cell sweep on the planned SLURM launcher.

`python -m s1x -m` over 5 data strategies x 4 extension strings x 5 thinking budgets (100 cells,
5 trainings, 95 cells chained behind them) with hydra/launcher=slurm, an empty store, against the
real local cluster that .ci/slurm-up starts. Every job is submitted held (`sbatch --hold`), so
none runs, and all are cancelled at the end. Measured from the process start to the first
`sbatch` accepted (its job id logged), with the launcher's own breakdown of the planning phases.

    python benchmarks/sweep_planning.py        # target: first job submitted / 10 s < 1
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 10.0
CELLS = 100
GRID = ["data=random,diverse,longest,full,s1k", "extend=wait,hmm,alternatively,none", "budget=min",
        "budget.tokens=16,32,64,96,128"]
JOB_NAME = f"s1x-sweep-planning-{os.getpid()}"  # what the jobs are cancelled by
LAUNCHER = ["hydra/launcher=slurm", "hydra.launcher.partition=debug", "hydra.launcher.gpus_per_node=0",
            "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1", f"hydra.launcher.name={JOB_NAME}",
            "+hydra.launcher.additional_parameters.hold=true"]
SUBMITTED = re.compile(r"#(\d+): job (\d+)")
PLANNED = re.compile(r"plan: \d+ cells: (.*)")


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and the children it waited for (sbatch), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime


def timed_lines(command: list[str], env: dict[str, str], last_line: re.Pattern,
                timeout: float) -> list[tuple[float, float, str]]:
    """Run `command`; stamp each output line with the wall and CPU seconds since the start; stop it at `last_line`."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(timeout, process.kill)
    watchdog.start()
    lines = []
    try:
        for line in process.stdout:
            lines.append((time.perf_counter() - start, cpu_seconds(process.pid), line.rstrip("\n")))
            if last_line.search(line):
                break
    finally:
        watchdog.cancel()
        process.kill()  # after the last submission it would only wait for the held jobs
        process.wait()
    return lines


def cancel_jobs(name: str) -> int:
    """scancel every job of this name; how many there were."""
    queued = subprocess.run(["squeue", "-h", "-o", "%i", f"--name={name}"], capture_output=True, text=True, check=True,
                            timeout=60).stdout.split()
    subprocess.run(["scancel", f"--name={name}"], check=True, timeout=60)
    return len(queued)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="s1x-sweep-planning-") as tmp:
        command = [sys.executable, "-m", "s1x", "-m", *GRID, *LAUNCHER, f"store_dir={tmp}/store",
                   f"hydra.sweep.dir={tmp}/sweep"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        try:
            lines = timed_lines(command, env, re.compile(rf"#{CELLS - 1}: job \d+"), timeout=300)
        finally:
            cancelled = cancel_jobs(JOB_NAME)
    report(lines, cancelled)


def phase_seconds(plan_line: str) -> dict[str, float]:
    """The launcher's breakdown, `plan: N cells: compose 7.01 s, validate 0.15 s, store lookups 0.07 s`."""
    parts = (part.rsplit(" ", 2) for part in PLANNED.search(plan_line).group(1).split(", "))
    return {name: float(seconds) for name, seconds, _ in parts}


def report(lines: list[tuple[float, float, str]], cancelled: int) -> None:
    planned = next(((wall, line) for wall, _, line in lines if PLANNED.search(line)), None)
    submissions = [(wall, cpu) for wall, cpu, line in lines if SUBMITTED.search(line)]
    if planned is None or not submissions:
        sys.exit("the sweep submitted nothing:\n" + "\n".join(line for _, _, line in lines[-40:]))
    plan_done, phases = planned[0], phase_seconds(planned[1])
    (first, first_cpu), last = submissions[0], submissions[-1][0]
    print(f"{CELLS}-cell sweep, empty store, {len(submissions)} jobs submitted held, {cancelled} cancelled "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs):")
    print(f"  {'start (imports, Hydra, the sweep overrides)':48s} {plan_done - sum(phases.values()):6.2f} s")
    for name, seconds in phases.items():
        print(f"  {f'{name} of {CELLS} cells':48s} {seconds:6.2f} s")
    print(f"  {'first sbatch accepted (executor, pickle, sbatch)':48s} {first - plan_done:6.2f} s")
    print(f"first job submitted after {first:.2f} s ({first_cpu:.2f} s of CPU); target {TARGET_S:.0f} s: "
          f"{'met' if first < TARGET_S else 'MISSED'} (ratio to target {first / TARGET_S:.2f})")
    per_job = (last - first) / max(len(submissions) - 1, 1)
    print(f"all {len(submissions)} submitted after {last:.2f} s ({per_job:.3f} s per further job)")


if __name__ == "__main__":
    main()
