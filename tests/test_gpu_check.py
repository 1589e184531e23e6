"""benchmarks/gpu_check.py in its CPU smoke mode, in a process of its own: the report it writes, and the guarantees
in it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_module


def _run(*args: str) -> subprocess.CompletedProcess:
    return run_module("benchmarks.gpu_check", list(args), timeout=300)


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("gpu_check") / "nested" / "x.json"
    result = _run("--smoke", "--out", str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(out.read_text()), result.stdout


def test_smoke_run_reports_placement_training_and_one_table(smoke_report):
    report, stdout = smoke_report
    assert report["smoke"] and report["passed"] and report["tensors_on_device"]
    assert report["placement"] == {"device": "cpu", "dtype": "bfloat16", "device_map": None, "tensor_parallel_size": 1,
                                   "weight_bytes": 2 * report["parameters"]}
    assert report["attn_implementation"] == "sdpa" and report["peak_bf16_flops"] is None
    sft = report["sft"]
    assert sft["timed_steps"] == 2 and sft["micro_batch"] == 4 and sft["accumulation"] == 2
    assert sft["packed"]["computed_tokens"] == sft["real_tokens"] < sft["padded"]["computed_tokens"]
    for name in ("packed", "padded"):
        assert sft[name]["tokens_per_second"] > 0 and sft[name]["mfu"] is None  # no known GPU peak on a CPU
    assert sft["packed_over_padded"] == pytest.approx(sft["packed"]["tokens_per_second"] / sft["padded"]["tokens_per_second"])
    isolation = sft["packing_isolation"]
    assert isolation["isolated"] and isolation["max_abs_error"] < 0.1 * isolation["max_abs_error_if_leaking"]
    # one table: a header, then each row of the JSON's table, in order
    header = next(i for i, line in enumerate(stdout.splitlines()) if line.startswith("check"))
    lines = stdout.splitlines()[header + 1: header + 1 + len(report["table"])]
    assert [line.split("  ")[0] for line in lines] == [row[0] for row in report["table"]]
    assert [row[0] for row in report["table"]][-3:] == ["forcing max 16", "forcing min 12", "forcing ignore 2"]


def test_smoke_run_forcing_guarantees_hold_sample_by_sample(smoke_report):
    forcing = smoke_report[0]["forcing"]
    assert all(forcing[mode]["guarantee"] for mode in ("max", "min", "ignore"))
    samples = {mode: forcing[mode]["per_sample"] for mode in forcing}
    assert all(len(s) == 4 for s in samples.values())
    assert all(s["thinking_tokens"] <= forcing["max"]["tokens"] for s in samples["max"])
    assert any(s["capped"] for s in samples["max"])
    assert all(s["thinking_tokens"] >= forcing["min"]["tokens"] or s["hit_limit"] for s in samples["min"])
    assert sum(s["extensions"] for s in samples["min"]) > 0  # the stopper made the model try to stop early
    k = forcing["ignore"]["times"]
    assert all(s["extensions"] == k for s in samples["ignore"] if not s["hit_limit"])
    assert any(s["extensions"] == k for s in samples["ignore"])
    assert all(forcing[mode]["tokens_per_second"] > 0 for mode in forcing)


def test_without_a_gpu_the_full_run_refuses(tmp_path: Path):
    result = _run("--out", str(tmp_path / "x.json"))
    assert result.returncode == 2 and "no GPU" in result.stderr
    assert not (tmp_path / "x.json").exists()


def test_the_gpu_image_can_build_the_stage_policy():
    """The GPU image has no math_verify: the script imports s1x.evaluate.policy, which must not need it."""
    code = "import sys, s1x.evaluate.policy; assert 'math_verify' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
