"""Sweeps as stage-job graphs on the real single-node SLURM cluster that .ci/slurm-up starts (no fake sbatch).

Every sweep here uses the default sweep directory (outputs/sweeps/<time>_<pid> under the test's own
working directory), as a user's would: each job must write into the one the planning process chose.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from s1x.report.cells import collect_cells
from s1x.slurm import ended, job_states
from s1x.store import Store
from tests.conftest import ROOT, run_s1x
from tests.test_slurm_cluster import job_fields
from tests.wandb_log import offline_runs

pytestmark = pytest.mark.skipif(shutil.which("sbatch") is None, reason="no SLURM cluster here (start one with .ci/slurm-up)")

# Small cells, sized for the test cluster (one CPU each, no GPU).
LAUNCHER = ["hydra/launcher=slurm", "hydra.launcher.partition=debug", "hydra.launcher.gpus_per_node=0",
            "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=4", "hydra.launcher.timeout_min=10"]


def _tiny(tiny_model_dir: Path, tmp_path: Path) -> list[str]:
    return ["model=tiny", f"model.path={tiny_model_dir}", f"store_dir={tmp_path}/store", "data.size=8",
            "train.epochs=1", "train.global_batch_size=4", "train.micro_batch_size=4", "eval.limit=4",
            "eval.max_thinking_tokens=24", "eval.max_answer_tokens=6", "budget=min", "budget.tokens=12", "eval.engine=hf"]


def sweeps(cwd: Path) -> list[Path]:
    """The sweep directories under the default `outputs/sweeps`, oldest first."""
    return sorted((cwd / "outputs" / "sweeps").iterdir()) if (cwd / "outputs" / "sweeps").is_dir() else []


def graph_jobs(sweep: Path) -> dict[str, list[dict]]:
    graph = json.loads((sweep / "graph.json").read_text())
    by_stage = {stage: [n for n in graph["nodes"] if n["stage"] == stage and n["state"] == "submit"]
                for stage in ("select", "train", "eval")}
    return {**by_stage, "report": [{"job_id": graph["report_job"]}] if graph["report_job"] else []}


def status(sweep: Path, wait: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    """`python -m s1x.status SWEEP --wait`: blocks until no job of the sweep is queued or running."""
    return subprocess.run([sys.executable, "-m", "s1x.status", str(sweep), *(["--wait", "--interval", "2"] if wait else [])],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_a_grid_is_one_job_per_unique_stage_and_the_launcher_returns_at_once(tiny_model_dir: Path, tmp_path: Path):
    tiny = [arg for arg in _tiny(tiny_model_dir, tmp_path) if not arg.startswith("budget.tokens=")]
    args = ["-m", "data=random,longest", "extend=wait,hmm", "budget.tokens=8,12", *LAUNCHER, *tiny]
    first = run_s1x(args, cwd=tmp_path)
    [sweep] = sweeps(tmp_path)
    jobs = graph_jobs(sweep)
    ids = [n["job_id"] for stage in jobs.values() for n in stage]
    states = job_states(ids)
    assert not [j for j in ids if ended(states.get(j, "ENDED"))], states  # it returned before any job ended
    assert {stage: len(nodes) for stage, nodes in jobs.items()} == {"select": 2, "train": 2, "eval": 8, "report": 1}
    train_job = {n["key"]: n["job_id"] for n in jobs["train"]}
    for node in jobs["eval"]:
        assert f"afterok:{train_job[node['needs'][1]]}" in job_fields(node["job_id"])["Dependency"]
    assert "afterany:" in job_fields(jobs["report"][0]["job_id"])["Dependency"]
    output = first.stdout + first.stderr
    assert "graph: 8 cells -> 12 stage jobs + 1 report job (2 select, 2 train, 8 eval)" in output
    assert "Follow with: python -m s1x.status" in output

    queued = run_s1x(args, cwd=tmp_path)  # the same grid again, while the first one's jobs are queued
    assert "-> 0 stage jobs + 0 report job" in queued.stdout + queued.stderr and "12 queued by an earlier submission" in queued.stderr + queued.stdout
    second = sweeps(tmp_path)[1]
    assert not (second / ".submitit").exists()

    done = status(sweep)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "8 cells: 8 done" in done.stdout and "report" in done.stdout
    cells = collect_cells(sweep)
    assert [c["status"] for c in cells] == ["done"] * 8 and len({c["dir"] for c in cells}) == 8
    assert sorted(c["stages"]["train"]["reused"] for c in cells) == [False] * 2 + [True] * 6
    assert len([line for line in (sweep / "report.md").read_text().splitlines() if "| done |" in line]) == 8  # the report job's
    assert job_fields(jobs["report"][0]["job_id"])["JobState"] == "COMPLETED"
    assert status(second, wait=False).returncode == 0  # the queued sweep's cells read the same store
    assert [c["results"] for c in collect_cells(second)] == [c["results"] for c in cells]

    again = run_s1x(args, cwd=tmp_path)
    assert "every stage is in the store: nothing to submit" in again.stdout + again.stderr
    third = sweeps(tmp_path)[2]
    assert not (third / ".submitit").exists() and "| done |" in (third / "report.md").read_text()


@pytest.mark.slow
def test_a_failed_stage_fails_its_cell_and_the_sweep(tiny_model_dir: Path, tmp_path: Path):
    # LoRA on modules the model does not have: valid at planning, an error inside the training job.
    args = ["-m", "train=full,lora", "train.lora_target_modules=[no_such_proj]", *LAUNCHER,
            *_tiny(tiny_model_dir, tmp_path), "logger=wandb"]
    run_s1x(args, cwd=tmp_path, env={"WANDB_MODE": "offline"})
    [sweep] = sweeps(tmp_path)
    result = status(sweep)
    assert result.returncode == 1 and "2 cells: 1 done, 1 failed" in result.stdout, result.stdout + result.stderr
    assert "CANCELLED" in result.stdout  # the failed training's evaluation never ran (afterok)
    cells = {c["dir"]: c for c in collect_cells(sweep)}
    assert cells["0"]["status"] == "done" and cells["1"]["status"] == "failed" and cells["1"]["failed_stage"] == "train"
    error = cells["1"]["error"].strip().splitlines()[-1]
    assert "no_such_proj" in error
    log_file = cells["1"]["error"].split("(log ")[1].split(")")[0]
    assert error in Path(log_file).read_text()
    assert f"| failed: {error}" in (sweep / "report.md").read_text()  # the report job's
    assert job_fields(graph_jobs(sweep)["report"][0]["job_id"])["JobState"] == "FAILED"  # the report job says so too
    runs = offline_runs(sweep)
    assert len(runs) == 5 and {r["group"] for r in runs} == {sweep.name}  # 3 + 1 stages that ran, and the report

    # Again, waiting here: only the failed training and its evaluation are submitted, and the command fails.
    again = run_s1x([*args, "hydra.launcher.wait=true"], cwd=tmp_path, check=False, env={"WANDB_MODE": "offline"})
    output = again.stdout + again.stderr
    assert again.returncode != 0 and "1 cell(s) failed" in output
    assert "-> 2 stage jobs + 0 report job (0 select, 1 train, 1 eval); 3 stages already in the store" in output


def _pool_row(i: int) -> str:
    return json.dumps({"id": str(i), "question": f"What is {i} + {i}?", "answer": str(2 * i), "trace": f"{i} + {i} = {2 * i}"})


def test_a_pool_file_edited_while_the_jobs_queue_fails_the_select_job_in_one_line(tiny_model_dir: Path, tmp_path: Path):
    """A job must not fill a key nothing waits for: a local pool file enters the select key by size and mtime,
    so once it changes between planning and the job's start, the select job recomputes another key and
    fails, telling the user to submit again, before it selects anything. The jobs are submitted held, so the
    edit happens while they wait in the queue. Training is kept (not train=none): it makes the evaluation
    wait for the selection (afterok), so both are cancelled when it fails and nothing but it and the report runs."""
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(_pool_row(i) + "\n" for i in range(1, 9)))  # exactly data.size=8 rows
    args = ["-m", "data=random", "pool=local", f"pool.sources=[{{path: {pool}}}]", *LAUNCHER,
            "+hydra.launcher.additional_parameters.hold=true", *_tiny(tiny_model_dir, tmp_path)]
    run_s1x(args, cwd=tmp_path)
    [sweep] = sweeps(tmp_path)
    jobs = graph_jobs(sweep)
    submitted = [n["job_id"] for nodes in jobs.values() for n in nodes]
    [select] = jobs["select"]
    try:
        assert {job_fields(j)["Reason"] for j in submitted} == {"JobHeldUser"}, "the jobs must wait while the pool changes"
        with pool.open("a") as edit:
            edit.write(_pool_row(9) + "\n")
        subprocess.run(["scontrol", "release", ",".join(submitted)], check=True, timeout=30)
        done = status(sweep, timeout=300)
    finally:
        subprocess.run(["scancel", *submitted], timeout=30)  # whatever is left, if the test failed
    assert done.returncode == 1 and "1 cells: 1 failed" in done.stdout, done.stdout + done.stderr

    message = f"ConfigError: select: planned as key {select['key']}, the config now gives "
    ending = ": an input changed since the sweep was planned; submit it again"
    cell = json.loads((sweep / "0" / "cell.json").read_text())  # settled by the report job
    assert cell["status"] == "failed" and cell["failed_stage"] == "select"
    assert "Traceback" not in cell["error"]  # bad input: the job, its log, then the one line
    error = cell["error"].strip().splitlines()[-1]
    assert error.startswith(message) and error.endswith(ending), error
    now = error.removeprefix(message).removesuffix(ending)
    assert len(now) == 16 and now != select["key"]
    job_log = sweep / ".submitit" / select["job_id"] / f"{select['job_id']}_0_log.out"
    assert error in job_log.read_text()
    assert f"select {select['key']}  job {select['job_id']:>8s}  failed: {error}" in done.stdout
    assert f"| failed: {error} |" in (sweep / "report.md").read_text()  # whole: under the report's 160 characters

    assert job_fields(select["job_id"])["JobState"] == "FAILED"
    for stage in ("train", "eval"):  # they wait (afterok) for the selection: cancelled, never run
        [node] = jobs[stage]
        assert job_fields(node["job_id"])["JobState"] == "CANCELLED"
        assert not (sweep / ".submitit" / node["job_id"] / f"{node['job_id']}_0_log.out").exists()
    assert Store(tmp_path / "store").job_record("select", select["key"])["state"] == "failed"
    entries = [p for p in (tmp_path / "store").glob("*/*") if not p.name.startswith(".")]  # beside the jobs' records
    assert not entries, entries  # no selection, under the planned key or the new one; nothing after it


def test_a_dry_run_prints_the_graph_and_submits_nothing(tmp_path: Path):
    result = run_s1x(["-m", "data=random,longest", "extend=wait,hmm", "budget=min", "budget.tokens=8,16",
                      "hydra/launcher=slurm", "hydra.launcher.dry_run=true", f"store_dir={tmp_path}/store"], cwd=tmp_path)
    output = result.stdout + result.stderr
    assert "graph: 8 cells -> 12 stage jobs + 1 report job (2 select, 2 train, 8 eval)" in output
    assert "1 node x 1 GPU, 8 CPU, 112 GB" in output and "1 node, no GPU, 16 CPU, 64 GB" in output
    assert "as one job per cell holding 1 x 8 GPUs: 0.12x" in output
    assert "nothing submitted" in output and not sweeps(tmp_path)


def test_a_bad_value_fails_the_sweep_before_any_job_is_submitted(tiny_model_dir: Path, tmp_path: Path):
    result = run_s1x(["-m", "data.size=8,-1", *LAUNCHER, *_tiny(tiny_model_dir, tmp_path)[:3]], cwd=tmp_path, check=False)
    assert result.returncode != 0 and "data.size must be positive, got -1" in result.stderr
    assert not [d for d in sweeps(tmp_path) if (d / ".submitit").exists()]
