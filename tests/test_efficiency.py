"""The efficiency view: the Pareto front of every method's points and the tokens each method needs to reach
plain decoding's accuracy, on hand-built cells and in the report."""
from __future__ import annotations

from pathlib import Path

import matplotlib.image
import pytest

from s1x.report import write_report
from s1x.report.cells import collect_cells
from s1x.report.efficiency import pareto_front, savings, tokens_to_reach
from s1x.report.table import build_table, scaling_panels
from tests.test_report import _result, _scale_results, _write_cell


def test_the_pareto_front_keeps_what_nothing_beats():
    points = [(50, 0.30), (40, 0.30), (80, 0.50), (60, 0.25), (120, 0.50), (100, 0.55)]
    assert pareto_front(points) == [(40, 0.30), (80, 0.50), (100, 0.55)]


def test_tokens_to_reach_a_target_follow_the_line():
    line = [(100, 0.6), (20, 0.2), (60, 0.5)]
    assert tokens_to_reach(line, 0.2) == 20 and tokens_to_reach(line, 0.1) == 20
    assert tokens_to_reach(line, 0.35) == pytest.approx(40.0)  # halfway between (20, 0.2) and (60, 0.5)
    assert tokens_to_reach(line, 0.55) == pytest.approx(80.0)
    assert tokens_to_reach(line, 0.7) is None


@pytest.fixture
def comparison(tmp_path: Path) -> Path:
    """Plain decoding at 50 % for 100 tokens; max caps that reach it at 75 tokens; no_wait that gets there with
    fewer tokens; a curve that never does; and a failed cell."""
    sweep = tmp_path / "methods"
    _write_cell(sweep, 0, ["budget=none"], status="done", results=[_result("embedded", 4, 8, 100.0)])
    _write_cell(sweep, 1, ["budget=max", "budget.tokens=50"], status="done", results=[_result("embedded", 2, 8, 50.0)])
    _write_cell(sweep, 2, ["budget=max", "budget.tokens=100"], status="done", results=[_result("embedded", 5, 8, 100.0)])
    _write_cell(sweep, 3, ["budget=no_wait"], status="done", results=[_result("embedded", 4, 8, 70.0)])
    results, curves = _scale_results({"embedded": {16: (1, 16.0), 32: (2, 31.0)}})
    _write_cell(sweep, 4, ["budget=scale", "budget.caps=[16,32]"], status="done", results=results, scaling=curves)
    _write_cell(sweep, 5, ["budget=min", "budget.tokens=200"], status="failed", error="Traceback\nValueError: x\n")
    return sweep


def test_each_method_is_one_line_and_savings_are_against_plain_decoding(comparison: Path):
    lines = scaling_panels(build_table(collect_cells(comparison)))["embedded"]
    assert set(lines) == {"budget=none", "budget=max", "budget=no_wait", "budget=scale"}
    reference, found = savings(lines, "budget=none")
    assert reference == (100.0, 0.5)
    by_method = {s.method: (s.tokens_needed, s.tokens_saved) for s in found}
    assert by_method["budget=no_wait"] == (70.0, 30.0)
    assert by_method["budget=max"] == (pytest.approx(250 / 3), pytest.approx(50 / 3))  # 50 at 25 %, 100 at 62.5 %
    assert by_method["budget=none"] == (100.0, 0.0) and by_method["budget=scale"] == (None, None)
    assert [s.method for s in found] == ["budget=no_wait", "budget=max", "budget=none", "budget=scale"]


def test_the_report_has_the_pareto_plot_and_the_tokens_saved_table(comparison: Path):
    report = write_report(comparison).read_text()
    section = report.split("## Efficiency: thinking tokens at plain decoding's accuracy")[1]
    assert "Plain decoding (budget=none) on embedded: 50.0 % at 100.0 thinking tokens." in section
    assert "| budget=no_wait | 50.0 | 70.0 | +30.0 (+30 %) |" in section
    assert "| budget=max | 62.5 | 83.3 | +16.7 (+17 %) |" in section
    assert "| budget=scale | 25.0 | not reached | – |" in section
    image = matplotlib.image.imread(comparison / "efficiency.png")
    assert image.shape[0] > 300 and "![efficiency](efficiency.png)" in report


def test_no_efficiency_view_for_a_single_method(tmp_path: Path):
    sweep = tmp_path / "one"
    _write_cell(sweep, 0, ["budget=max", "budget.tokens=8"], status="done", results=[_result("embedded", 1, 8, 8.0)])
    _write_cell(sweep, 1, ["budget=max", "budget.tokens=16"], status="done", results=[_result("embedded", 2, 8, 16.0)])
    report = write_report(sweep).read_text()
    assert "Efficiency" not in report and not (sweep / "efficiency.png").exists()


@pytest.mark.slow
def test_the_comparison_experiment_runs_in_miniature(tiny_model_dir: Path, tmp_path: Path):
    from tests.conftest import ROOT, run_s1x

    sweep = tmp_path / "sweep"
    run_s1x(["-m", "+experiment=test_time_methods", "model=tiny", f"model.path={tiny_model_dir}", "eval.engine=hf",
             f"store_dir={tmp_path}/store", f"cache_dir={tmp_path}/cache", "data.size=8", "train.epochs=1",
             "train.global_batch_size=4", "train.micro_batch_size=4", "eval.limit=4", "eval.max_thinking_tokens=64",
             "eval.max_answer_tokens=6", f"hydra.sweep.dir={sweep}"], cwd=ROOT)
    cells = collect_cells(sweep)
    assert len(cells) == 13 and {c["status"] for c in cells} == {"done"}
    assert len({c["stages"]["train"]["key"] for c in cells}) == 1  # one trained model for every method
    report = (sweep / "report.md").read_text()
    assert "## Efficiency: thinking tokens at plain decoding's accuracy" in report
    methods = report.split("## Efficiency")[1]
    assert "Plain decoding (+experiment/test_time_methods=none) on embedded" in methods
    for method in ("none", "max", "curve", "no_wait", "token_conditional", "entropy", "early_exit", "schedule",
                   "deepconf vote", "deepconf majority voting"):
        assert f"| +experiment/test_time_methods={method} |" in methods
    assert matplotlib.image.imread(sweep / "efficiency.png").shape[0] > 300
