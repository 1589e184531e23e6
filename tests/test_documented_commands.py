"""Every command that README.md and the experiments' headers give runs as typed, with the defaults users get.

Commands run from the repository root into its default store and output directories, as a user's would, in
document order, so later commands reuse what earlier ones computed (as they would for the user). A command
written for a GPU cluster (a SLURM launcher, or an experiment on a 32B model) runs with the documented
overlay `+overlay=miniature`, and under SLURM on the local cluster that .ci/slurm-up starts. They take over
an hour on 2 cores, so they carry the `docs` marker, which `make test` (and so CI) leaves out: `pytest -m docs`.
"""
from __future__ import annotations

import csv
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

# Commands that cannot run here, and why.
NOT_RUN = {
    "make test": "it runs this test suite",
    "wandb sweep": "it registers the sweep with a W&B server, which no machine here reaches",
}
EMBEDDED_EXPERIMENTS = {"embedded_data_ablations"}
LOCAL_CLUSTER = ["hydra.launcher.partition=debug", "hydra.launcher.gpus_per_node=0", "hydra.launcher.cpus_per_task=2",
                 "hydra.launcher.mem_gb=4", "hydra.launcher.timeout_min=30"]


def _commands_in(text: str, fenced: bool) -> list[str]:
    """Command lines: inside ```bash blocks (README), or comment lines of a YAML header."""
    commands, inside = [], not fenced
    for line in text.splitlines():
        if fenced and line.startswith("```"):
            inside = line.strip() == "```bash" if not inside else False
            continue
        line = line.lstrip("#").strip() if not fenced else line.strip()
        if inside and re.match(r"(make |python -m s1x|wandb )", line):
            commands.append(line.split("  #")[0].strip())
    return commands


def documented_commands() -> list[tuple[str, str]]:
    found = [("README.md", c) for c in _commands_in((ROOT / "README.md").read_text(), fenced=True)]
    for path in sorted((ROOT / "experiments").glob("*.yaml")):
        header = "\n".join(line for line in path.read_text().splitlines() if line.startswith("#"))
        found += [(f"experiments/{path.name}", c) for c in _commands_in(header, fenced=False)]
    return found


def for_this_machine(command: str) -> list[str]:
    """The command's arguments, with the overlay where it targets a GPU cluster."""
    args = shlex.split(command)
    experiment = next((a.split("=", 1)[1] for a in args if a.startswith("+experiment=")), None)
    slurm = "hydra/launcher=slurm" in args
    if slurm:
        args = [a for a in args if not a.startswith("hydra.launcher.partition=")] + LOCAL_CLUSTER
    if slurm or experiment and experiment not in EMBEDDED_EXPERIMENTS:
        args.append("+overlay=miniature")
    return args


def _latest_sweep() -> Path:
    return max((ROOT / "outputs" / "sweeps").iterdir(), key=lambda p: p.stat().st_mtime)


def test_the_documents_hold_commands_of_each_kind():
    commands = [c for _, c in documented_commands()]
    assert commands[0] == "make run" and any(c.startswith("python -m s1x -m") for c in commands)
    assert sum("+experiment=" in c for c in commands) >= 5
    assert any("hydra/launcher=slurm" in c for c in commands)


@pytest.mark.slow
@pytest.mark.docs
@pytest.mark.parametrize("source,command", documented_commands(), ids=[c for _, c in documented_commands()])
def test_documented_command_runs_as_typed(source: str, command: str):
    skip = next((why for start, why in NOT_RUN.items() if command.startswith(start)), None)
    if skip:
        pytest.skip(f"{source}: `{command}`: {skip}")
    args = for_this_machine(command)
    if "hydra/launcher=slurm" in args and not shutil.which("sbatch"):
        pytest.skip("no SLURM here; .ci/slurm-up starts the local cluster")
    if "<sweep>" in command:
        args = [a.replace("outputs/sweeps/<sweep>", str(_latest_sweep())) for a in args]
    if args[0] == "python":
        args[0] = sys.executable
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "WANDB_MODE": "offline"})
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{source}: `{command}` exited {result.returncode}:\n{output[-4000:]}"
    reports = re.findall(r"report\s+(\S+/report\.md)", output) or re.findall(r"(\S+/report\.md)", output)
    if args[0] == "make" or "-m" in args[1:3] and args[2] == "s1x":
        assert reports, f"{source}: `{command}` wrote no report:\n{output[-2000:]}"
        with open(Path(reports[-1]).with_suffix(".csv")) as handle:
            statuses = [row["status"] for row in csv.DictReader(handle)]
        assert statuses and set(statuses) == {"done"}, f"{source}: `{command}`: cells {statuses}"
