"""Planning and submission overhead of a 100-cell sweep on the planned SLURM launcher, and the GPU-hours
its stage-job graph holds against one job per cell for the paper's full grid.

1. `python -m s1x -m` over 5 data strategies x 4 extension strings x 5 thinking budgets (100 cells:
   5 selections, 5 trainings, 100 evaluations) with hydra/launcher=slurm, an empty store, against the
   real local cluster that .ci/slurm-up starts. Every job is submitted held (`sbatch --hold`), so none
   runs, and all are cancelled at the end. Measured from the process start to the first `sbatch`
   accepted (its job id logged), with the launcher's own breakdown of the planning phases.
2. Every cell of the paper's experiments (experiments/*.yaml but the embedded ones), planned as the
   launcher plans them (s1x/graph.py) on its default node (8 GPUs): GPU-hours the graph's jobs hold
   against one job per cell holding the node through its stages, from the stage hours in
   conf/hydra/launcher/slurm.yaml; as the experiments are configured (one node), and with the paper's
   training shape (distributed=fsdp on 2 nodes x 8 GPUs, training then taking half the node's hours).
   Training and evaluation are the same work either way; the graph saves the GPUs a per-cell job holds
   idle: through selection, and a 2-node allocation's second node through evaluation.

    python benchmarks/sweep_planning.py        # targets: first job submitted / 10 s < 1; graph / per cell <= 0.5
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
TARGET_GPU_RATIO = 0.5
CELLS = 100
GRID = ["data=random,diverse,longest,full,s1k", "extend=wait,hmm,alternatively,none", "budget=min",
        "budget.tokens=16,32,64,96,128"]
JOB_NAME = f"s1x-sweep-planning-{os.getpid()}"  # what the jobs are cancelled by
LAUNCHER = ["hydra/launcher=slurm", "hydra.launcher.partition=debug", "hydra.launcher.gpus_per_node=0",
            "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1", f"hydra.launcher.name={JOB_NAME}",
            "+hydra.launcher.additional_parameters.hold=true"]
SUBMITTED = re.compile(r"\t(select|train|eval|report)\b.*: job (\d+)")
LAST = re.compile(r"\treport\s*: job \d+")
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


def cancel_jobs(prefix: str) -> int:
    """scancel every job whose name starts with prefix (the launcher names them PREFIX-STAGE); how many there were."""
    listed = subprocess.run(["squeue", "-h", "-o", "%i %j"], capture_output=True, text=True, check=True, timeout=60).stdout
    queued = [job for job, name in (line.split(" ", 1) for line in listed.splitlines()) if name.startswith(prefix)]
    if queued:
        subprocess.run(["scancel", *queued], check=True, timeout=60)
    return len(queued)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="s1x-sweep-planning-") as tmp:
        command = [sys.executable, "-m", "s1x", "-m", *GRID, *LAUNCHER, f"store_dir={tmp}/store",
                   f"hydra.sweep.dir={tmp}/sweep"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        try:
            lines = timed_lines(command, env, LAST, timeout=300)
        finally:
            cancelled = cancel_jobs(JOB_NAME)
    report(lines, cancelled)
    paper_grid_gpu_hours()


def paper_grid_gpu_hours() -> None:
    """The paper's experiments as one graph on the launcher's default node, against one job per cell."""
    import itertools

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from s1x.schemas import register
    from s1x.graph import Cell, build_graph, graph_gpu_hours, per_cell_gpu_hours
    from s1x.keys import planned_keys
    from s1x.validate import validated

    register()
    experiments = sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml") if not p.stem.startswith("embedded"))
    for label, shape in (("as configured", []), ("paper's training shape", ["distributed=fsdp"])):
        cells, launcher = [], None
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            for name in experiments:
                base = compose("config", [f"+experiment={name}", "hydra/launcher=slurm"], return_hydra_config=True)
                launcher = launcher or {k: v for k, v in OmegaConf.to_container(base.hydra.launcher).items()
                                        if k not in ("submitit_folder", "name")}
                params = dict(base.hydra.sweeper.params or {})
                grid = [[f"{key}={value}" for value in str(values).split(",")] for key, values in params.items()]
                for overrides in itertools.product(*grid):
                    cfg = validated(compose("config", [f"+experiment={name}", *shape, *overrides]))
                    cells.append(Cell(len(cells), list(overrides), cfg, planned_keys(cfg)))
        if shape:  # 2 nodes; s1-32B trained in 26 min on 16 H100: the node's hour of training takes half as long
            launcher = {**launcher, "nodes": 2, "train": {**launcher["train"], "hours": launcher["train"]["hours"] / 2}}
        nodes = build_graph(cells, launcher)
        by_stage, per_cell_by_stage = graph_gpu_hours(nodes.values()), per_cell_gpu_hours(cells, nodes, launcher)
        graph, per_cell = sum(by_stage.values()), sum(per_cell_by_stage.values())
        jobs = {stage: sum(n.stage == stage for n in nodes.values()) for stage in by_stage}
        print(f"paper grid ({', '.join(experiments)}), {label}: {len(cells)} cells -> "
              f"{', '.join(f'{n} {stage}' for stage, n in jobs.items())} jobs on {launcher['nodes']} x "
              f"{launcher['gpus_per_node']} GPU nodes: {graph:.1f} GPU-h as a graph, {per_cell:.1f} as one job per "
              f"cell: {graph / per_cell:.2f}x; target <= {TARGET_GPU_RATIO}: "
              f"{'met' if graph / per_cell <= TARGET_GPU_RATIO else 'MISSED'}")
        print("  per stage, graph / per cell: " + ", ".join(
            f"{stage} {by_stage[stage]:.1f} / {per_cell_by_stage[stage]:.1f}" for stage in by_stage)
            + "  (stage hours: " + ", ".join(f"{s} {launcher[s]['hours']}" for s in by_stage) + ")")


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
    print(f"{CELLS}-cell sweep, empty store, {len(submissions)} jobs (one per stage key, and the report) submitted "
          f"held, {cancelled} cancelled "
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
