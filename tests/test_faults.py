"""The fault matrix (README's reliability section): each fault, what the user sees, what is kept, what is
computed again. Runs the CLI on the tiny model."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_s1x, stage_lines, tiny_args

STAGES = ["select", "train", "eval"]


def _entries(store: Path, stage: str) -> list[Path]:
    return sorted((store / stage).glob("[0-9a-f]*")) if (store / stage).is_dir() else []


@pytest.mark.parametrize("killed", [*STAGES, "report"])
def test_kill_9_keeps_the_stages_before_and_computes_the_killed_one_again(killed: str, tiny_model_dir: Path,
                                                                          tmp_path: Path):
    args = [*tiny_args(tiny_model_dir, tmp_path), f"hydra.run.dir={tmp_path}/run"]
    child = subprocess.run([sys.executable, "-m", "tests.killed_run", killed, *args], cwd=ROOT, capture_output=True,
                           text=True, timeout=600, start_new_session=True)
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    store = tmp_path / "store"
    before = STAGES[: STAGES.index(killed)] if killed in STAGES else STAGES
    # What finished is in the store; the killed stage's work is only in a hidden directory, never served.
    assert [stage for stage in STAGES if _entries(store, stage)] == before
    rerun = run_s1x(args, cwd=ROOT)
    output = rerun.stdout + rerun.stderr
    assert stage_lines(output) == [(stage, "reused" if stage in before else "done") for stage in STAGES]
    assert not list(store.glob("*/.*.tmp-*")) and not list(store.glob("*/.*.progress"))
    assert json.loads((tmp_path / "run" / "cell.json").read_text())["status"] == "done"
    assert (tmp_path / "run" / "report.md").is_file()
    if killed == "eval":  # every sample was journaled before the kill: none is generated again
        assert "resuming: 4 finished samples" in output
