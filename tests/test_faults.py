"""The fault matrix (README's reliability section): each fault, what the user sees, what is kept, what is
computed again. Runs the CLI on the tiny model."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_module, run_s1x, stage_lines, tiny_args, validated_config
from tests.interrupted_sweep import WAITING

STAGES = ["select", "train", "eval"]


def _entries(store: Path, stage: str) -> list[Path]:
    return sorted((store / stage).glob("[0-9a-f]*")) if (store / stage).is_dir() else []


def test_kill_9_keeps_the_stages_before_and_computes_the_killed_one_again(tiny_model_dir: Path, tmp_path: Path):
    """One cell killed at each stage in turn, each time at the latest moment (its output written, not yet in the
    store; the report while it is written): every run reuses what the runs before it finished, computes the
    stage they were killed in again, and never serves a killed stage's work."""
    args = [*tiny_args(tiny_model_dir, tmp_path), f"hydra.run.dir={tmp_path}/run"]
    store, finished = tmp_path / "store", []
    for killed in [*STAGES, "report"]:
        child = run_module("tests.killed_run", [killed, *args], new_session=True, timeout=600)
        assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
        output = child.stdout + child.stderr
        reached = STAGES[: STAGES.index(killed)] if killed in STAGES else STAGES
        assert stage_lines(output) == [(stage, "reused" if stage in finished else "done") for stage in reached]
        if killed == "report":  # the killed eval had journaled every sample: none was generated again
            assert "resuming: 4 finished samples" in output
        finished = reached
        # What finished is in the store; the killed stage's work is only in a hidden directory, never served.
        assert [stage for stage in STAGES if _entries(store, stage)] == finished
    rerun = run_s1x(args, cwd=ROOT)
    assert stage_lines(rerun.stdout + rerun.stderr) == [(stage, "reused") for stage in STAGES]
    assert not list(store.glob("*/.*.tmp-*")) and not list(store.glob("*/.*.progress"))
    assert json.loads((tmp_path / "run" / "cell.json").read_text())["status"] == "done"
    assert (tmp_path / "run" / "report.md").is_file()


@pytest.mark.slow  # over 10 s on 2 cores: processes of its own, killed and run again
def test_ctrl_c_in_a_local_sweep_keeps_the_cells_done_and_reports_the_rest_missing(tiny_model_dir: Path,
                                                                                   tmp_path: Path):
    args = ["-m", "data=random,longest,diverse", *tiny_args(tiny_model_dir, tmp_path), f"hydra.sweep.dir={tmp_path}/sweep"]
    # A shell's background job ignores SIGINT, and so would the sweep it starts: Ctrl-C must reach it as a terminal's.
    sweep = subprocess.Popen([sys.executable, "-m", "tests.interrupted_sweep", *args], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while not (tmp_path / WAITING).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    sweep.send_signal(signal.SIGINT)  # as Ctrl-C does, once cell 0 is done and cell 1 has started
    output, _ = sweep.communicate(timeout=300)
    assert sweep.returncode == 130 and "Traceback" not in output, output[-4000:]
    assert "stopped (Ctrl-C); the same command again reuses everything that finished" in output
    report = (tmp_path / "sweep" / "report.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith("| ") and "data=" in line]
    assert [row.split(" | ")[2] for row in rows] == ["done", "missing", "missing"], report
    again = run_s1x(args[:-1] + [f"hydra.sweep.dir={tmp_path}/again"], cwd=ROOT)
    assert stage_lines(again.stdout + again.stderr)[:3] == [("select", "reused"), ("train", "reused"), ("eval", "reused")]


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 700 KB tmpfs: room for a selection, not for a trained model (needs root, as CI's container has)."""
    disk = tmp_path / "small"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=700k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root)")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_fails_in_one_line_and_keeps_what_finished(tiny_model_dir: Path, tmp_path: Path, small_disk: Path):
    args = [*tiny_args(tiny_model_dir, tmp_path), f"store_dir={small_disk}/store", f"hydra.run.dir={tmp_path}/run"]
    full = run_s1x(args, cwd=ROOT, check=False)
    output = full.stdout + full.stderr
    assert full.returncode == 1 and "Traceback" not in output
    assert f"s1x: out of disk space under store_dir={small_disk}/store" in output
    store = small_disk / "store"
    assert _entries(store, "select") and not _entries(store, "train") and not list(store.glob("*/.*.tmp-*"))
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)  # space freed
    again = run_s1x(args, cwd=ROOT)
    assert stage_lines(again.stdout + again.stderr) == [("select", "reused"), ("train", "done"), ("eval", "done")]


@pytest.mark.slow  # over 10 s on 2 cores: two sweeps side by side, each a new interpreter
def test_two_sweeps_sharing_cells_on_one_store_compute_each_stage_once(tiny_model_dir: Path, tmp_path: Path):
    sweeps = [subprocess.Popen([sys.executable, "-m", "s1x", "-m", f"data={data}", *tiny_args(tiny_model_dir, tmp_path),
                                f"hydra.sweep.dir={tmp_path}/{name}"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
              for name, data in (("a", "random,longest"), ("b", "longest,diverse"))]
    outputs = [sweep.communicate(timeout=600)[0] for sweep in sweeps]
    assert [sweep.returncode for sweep in sweeps] == [0, 0], outputs
    lines = [line for output in outputs for line in stage_lines(output)]
    for stage in STAGES:  # longest's stages: computed by one sweep, waited for and reused by the other
        assert lines.count((stage, "done")) == 3 and lines.count((stage, "reused")) == 1, lines
        assert len(_entries(tmp_path / "store", stage)) == 3
    for name in ("a", "b"):
        report = (tmp_path / name / "report.md").read_text()
        assert len([line for line in report.splitlines() if line.startswith("| ") and " done " in line]) == 2


@pytest.mark.slow
def test_a_corrupted_cached_base_model_is_set_aside_and_converted_again(tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture):
    """The embedded default's SmolLM2, converted from its GGUF into the cache once, is checked at every use."""
    from s1x.models import resolve_model_path
    from s1x.store import damage

    model = validated_config().model
    target = Path(resolve_model_path(model, tmp_path))
    weights = target / "model.safetensors"
    size = weights.stat().st_size
    with open(weights, "r+b") as handle:
        handle.truncate(size // 2)
    with caplog.at_level("WARNING"):
        assert Path(resolve_model_path(model, tmp_path)) == target
    assert "is damaged (model.safetensors" in caplog.text and "converted again" in caplog.text
    assert weights.stat().st_size == size and damage(target, deep=True) == ""
    assert len(list(target.parent.glob(f".{target.name}.damaged-*"))) == 1
