"""The report stage on hand-built cells: CSV values, the LaTeX table, plots, failed and missing cells, W&B."""
from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest
from omegaconf import OmegaConf

from s1x.evaluate.records import wilson_interval
from s1x.evaluate.metrics import BudgetRun, scaling_metrics
from s1x.evaluate.results import Method, Point, Result, Series
from s1x.report import write_report
from s1x.report.callback import ReportAtSweepEnd
from s1x.report.cells import collect_cells
from s1x.report.paired import PairedComparison, mcnemar_p
from s1x.report.table import build_table, method_table, scaling_panels
from tests.conftest import ROOT

OOM = ("Traceback (most recent call last):\n  File \"/work/main/s1x/pipeline.py\", line 56, in run_cell\n"
       "    _run_stages(cfg, cell)\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB | 50% free\n")


def _result(benchmark: str, correct: int, n: int, tokens: float, point: Point | None = None) -> dict:
    """A result as evaluate writes it: each sample's answer on its own."""
    return Result(benchmark, point, Method.single, 1, "records/0.jsonl", n, correct / n, tokens, wilson_interval(correct, n),
                  3.0, 1.0, 0, 2, 0).to_dict()


def _scale_results(points: dict[str, dict[int, tuple[int, float]]]) -> tuple[list, dict]:
    """results and scaling of a budget=scale cell: benchmark -> cap -> (correct of 8, mean thinking tokens)."""
    results = [_result(name, correct, 8, tokens, Point(cap=cap)) for name, caps in points.items()
               for cap, (correct, tokens) in caps.items()]
    curves = {name: scaling_metrics([BudgetRun(tokens, correct / 8, None, cap) for cap, (correct, tokens) in caps.items()])
              for name, caps in points.items()}
    return results, curves


def _write_cell(sweep: Path, num: int, overrides: list[str], **cell: object) -> None:
    cell_dir = sweep / str(num)
    (cell_dir / ".hydra").mkdir(parents=True)
    (cell_dir / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(overrides))
    if cell:
        (cell_dir / "cell.json").write_text(json.dumps({"overrides": overrides, "choices": {}, "stages": {}, **cell}))


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """A test-time methods sweep: max and token-conditional at 64 and 128 tokens, a scaling curve,
    a cell that ran out of memory and one whose job died before writing cell.json."""
    sweep = tmp_path / "2025-01-31_12-00-00_4242"
    done = {"status": "done"}
    _write_cell(sweep, 0, ["model=tiny", "budget=max", "budget.tokens=64"], **done,
                results=[_result("embedded", 4, 8, 60.4), _result("math500", 2, 8, 63.0)])
    _write_cell(sweep, 1, ["model=tiny", "budget=max", "budget.tokens=128"], **done,
                results=[_result("embedded", 5, 8, 101.5), _result("math500", 3, 8, 120.0)])
    _write_cell(sweep, 2, ["model=tiny", "budget=token_conditional", "budget.tokens=64"], **done,
                results=[_result("embedded", 3, 8, 88.0), _result("math500", 2, 8, 91.5)])
    _write_cell(sweep, 3, ["model=tiny", "budget=token_conditional", "budget.tokens=128"], status="failed", error=OOM)
    results, curves = _scale_results({"embedded": {32: (2, 30.1), 64: (4, 55.7), 128: (5, 97.3)},
                                      "math500": {32: (1, 31.9), 64: (2, 60.2), 128: (3, 110.6)}})
    _write_cell(sweep, 4, ["model=tiny", "budget=scale", "budget.caps=[32,64,128]"], **done, results=results, scaling=curves)
    _write_cell(sweep, 5, ["model=tiny", "budget=ignore", "budget.times=2"])  # no cell.json: missing
    return sweep


def _csv(sweep: Path) -> dict[str, dict[str, str]]:
    with open(sweep / "report.csv") as handle:
        return {row["cell"]: row for row in csv.DictReader(handle)}


def _tex_rows(sweep: Path) -> list[list[str]]:
    """The body of report.tex: the cells of each row between \\midrule and \\bottomrule."""
    tex = (sweep / "report.tex").read_text()
    body = tex.split("\\midrule\n")[1].split("\\bottomrule")[0]
    return [line.removesuffix(" \\\\").split(" & ") for line in body.strip().splitlines()]


def test_csv_has_a_row_per_cell_with_plain_numbers(sweep: Path):
    write_report(sweep)
    rows = _csv(sweep)
    assert list(rows) == ["0", "1", "2", "3", "4", "5"]
    assert [rows[c]["status"] for c in rows] == ["done", "done", "done", "failed", "done", "missing"]
    first = rows["0"]
    assert (first["budget"], first["budget.tokens"], first["budget.caps"], first["budget.times"]) == ("max", "64", "", "")
    assert "model" not in first  # the same in every cell: not a swept axis
    assert float(first["embedded.accuracy"]) == 0.5 and float(first["math500.accuracy"]) == 0.25
    assert float(first["embedded.mean_thinking_tokens"]) == 60.4 and int(first["embedded.n"]) == 8
    low, high = wilson_interval(4, 8)
    assert (float(first["embedded.accuracy_ci95_low"]), float(first["embedded.accuracy_ci95_high"])) == (low, high)
    assert first["embedded@64.accuracy"] == "" and first["embedded.control"] == ""

    failed = rows["3"]
    assert failed["error"] == "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB | 50% free"
    assert failed["embedded.accuracy"] == "" and failed["budget"] == "token_conditional"
    assert rows["5"]["overrides"] == "model=tiny budget=ignore budget.times=2" and rows["5"]["budget.times"] == "2"

    scale = rows["4"]
    assert scale["budget.caps"] == "[32,64,128]" and scale["embedded.accuracy"] == ""
    assert float(scale["embedded@64.accuracy"]) == 0.5 and float(scale["math500@128.mean_thinking_tokens"]) == 110.6

    only_scale = sweep.parent / "only_scale"
    (only_scale / "0").mkdir(parents=True)
    (only_scale / "0" / "cell.json").write_text((sweep / "4" / "cell.json").read_text())
    write_report(only_scale)
    assert "embedded.accuracy" not in _csv(only_scale)["0"]  # a curve's name is no benchmark of its own
    slopes = [0.25 / (55.7 - 30.1), 0.375 / (97.3 - 30.1), 0.125 / (97.3 - 55.7)]
    assert float(scale["embedded.scaling"]) == pytest.approx(sum(slopes) / 3)
    assert (float(scale["embedded.control"]), float(scale["embedded.performance"])) == (1.0, 0.625)


def test_latex_table_is_shaped_like_the_paper(sweep: Path):
    write_report(sweep)
    tex = (sweep / "report.tex").read_text()
    assert "\\begin{tabular}{llllrrrrrrrrrr}" in tex and "\\toprule" in tex and "\\bottomrule" in tex
    assert ("& & & & \\multicolumn{2}{c}{Accuracy (\\%)} & \\multicolumn{2}{c}{Thinking tokens} & "
            "\\multicolumn{3}{c}{embedded} & \\multicolumn{3}{c}{math500} \\\\") in tex
    assert "\\cmidrule(lr){5-6} \\cmidrule(lr){7-8} \\cmidrule(lr){9-11} \\cmidrule(lr){12-14}" in tex
    assert ("budget & budget.tokens & budget.caps & budget.times & embedded & math500 & embedded & math500 & "
            "Control (\\%) & Scaling (\\%/1K tokens) & Performance (\\%) & Control (\\%)") in tex
    assert "@" not in tex  # the per-cap points are in the plot and the CSV

    rows = _tex_rows(sweep)
    none = ["--"] * 6
    assert rows[0] == ["max", "64", "--", "--", "50.0", "25.0", "60.4", "63.0", *none]
    assert rows[2] == ["token\\_conditional", "64", "--", "--", "37.5", "25.0", "88.0", "91.5", *none]
    assert rows[3] == ["token\\_conditional", "128", "--", "--", "\\multicolumn{10}{c}{failed}"]
    assert rows[4] == ["scale", "--", "[32,64,128]", "--", "--", "--", "--", "--",
                       "100.0", "611.69", "62.5", "100.0", "335.79", "37.5"]
    assert rows[5] == ["ignore", "--", "--", "2", "\\multicolumn{10}{c}{missing}"]


def test_markdown_marks_failed_and_missing_cells_and_shows_the_plots(sweep: Path):
    report = write_report(sweep).read_text()
    rows = {line.split(" | ")[0]: line for line in report.splitlines() if line.startswith("| ")}
    assert rows["| 3"].startswith("| 3 | budget=token_conditional budget.tokens=128 | failed: torch.OutOfMemoryError: "
                                  "CUDA out of memory. Tried to allocate 2.00 GiB \\| 50% free |")
    assert rows["| 5"].startswith("| 5 | budget=ignore budget.times=2 | missing |")
    first = rows["| 0"]
    low, high = wilson_interval(4, 8)
    assert f"| 50.0 ({100 * low:.1f}–{100 * high:.1f}) |" in first
    assert "![scaling](scaling.png)" in report and "![accuracy](accuracy.png)" in report


def test_plots_are_images_of_the_finished_cells_only(sweep: Path):
    write_report(sweep)
    for name in ("scaling.png", "accuracy.png"):
        image = matplotlib.image.imread(sweep / name)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100 and image.std() > 0
    panels = scaling_panels(build_table(collect_cells(sweep)))
    assert panels["embedded"] == {
        "budget=max": [(60.4, 0.5), (101.5, 0.625)],
        "budget=token_conditional": [(88.0, 0.375)],  # its 128-token cell failed
        "budget=scale": [(30.1, 0.25), (55.7, 0.5), (97.3, 0.625)],
    }
    assert set(panels) == {"embedded", "math500"}


def test_plots_are_written_only_when_there_is_data_for_them(tmp_path: Path):
    one = tmp_path / "one"
    _write_cell(one, 0, ["data=random"], status="done", results=[_result("embedded", 3, 8, 40.0)])
    write_report(one)
    assert (one / "accuracy.png").exists() and not (one / "scaling.png").exists()  # one point is no curve
    assert _tex_rows(one) == [["data=random", "37.5", "40.0"]]

    broken = tmp_path / "broken"
    _write_cell(broken, 0, ["data=random"], status="failed", error=OOM)
    _write_cell(broken, 1, ["data=longest"], status="failed", error=OOM)
    report = write_report(broken).read_text()
    assert not list(broken.glob("*.png")) and "png" not in report
    assert _tex_rows(broken) == [["random", "\\multicolumn{1}{c}{failed}"], ["longest", "\\multicolumn{1}{c}{failed}"]]


def test_majority_voting_is_a_benchmark_column_and_a_line_of_its_own(tmp_path: Path):
    """Cells with eval.samples=4: majority voting over the first 1, 2, 4 samples, as evaluate writes it."""
    sweep = tmp_path / "votes"
    for num, (data, correct, votes) in enumerate([("random", 3, {1: (0.25, 40.0), 2: (0.375, 80.5), 4: (0.5, 161.0)}),
                                                   ("s1k", 4, {1: (0.5, 52.0), 2: (0.5, 104.0), 4: (0.625, 209.5)})]):
        results = [{**_result("embedded", 4 * correct, 32, 41.0 + num), "samples": 4}]  # 8 questions, 4 samples each
        results += [Result("embedded", None, Method.majority, votes, "records/0.jsonl", 8, accuracy, tokens).to_dict()
                    for votes, (accuracy, tokens) in votes.items()]
        _write_cell(sweep, num, [f"data={data}", "eval.samples=4", "eval.temperature=0.7"], status="done", results=results)
    write_report(sweep)
    rows = _csv(sweep)
    assert float(rows["0"]["embedded maj@2.accuracy"]) == 0.375 and float(rows["1"]["embedded maj@4.mean_thinking_tokens"]) == 209.5
    assert rows["0"]["embedded maj@4.accuracy_ci95_low"] == ""  # votes have no interval of their own
    assert (rows["0"]["embedded.n"], rows["0"]["embedded maj@4.n"]) == ("32", "8")  # answers graded, questions voted on
    header = next(line for line in (sweep / "report.md").read_text().splitlines() if line.startswith("| cell"))
    assert header.index("embedded accuracy") < header.index("embedded maj@1 accuracy") < header.index("embedded maj@4 accuracy")
    assert _tex_rows(sweep)[1] == ["s1k", "50.0", "50.0", "50.0", "62.5", "42.0", "52.0", "104.0", "209.5"]
    panels = scaling_panels(build_table(collect_cells(sweep)))
    assert panels["embedded"]["data=random majority voting"] == [(40.0, 0.25), (80.5, 0.375), (161.0, 0.5)]
    assert panels["embedded"]["data=s1k"] == [(42.0, 0.5)]
    assert (sweep / "scaling.png").exists() and (sweep / "accuracy.png").exists()


def test_methods_run_at_several_budgets_get_control_scaling_and_performance(tmp_path: Path):
    """The paper's Table 3 from separate cells: token-conditional control asked for 64, 128 and 256 tokens
    (its 64-token cell thinks 70 tokens: outside its budget), rejection sampling at 64 and 128 from cells
    written before cells recorded their bounds (no Control), and one ignore cell (no curve)."""
    sweep = tmp_path / "methods"
    cells = [("token_conditional", 64, 2, 70.0, [None, 64]), ("token_conditional", 128, 4, 120.0, [None, 128]),
             ("token_conditional", 256, 4, 200.0, [None, 256]), ("rejection", 64, 3, 50.0, None),
             ("rejection", 128, 5, 110.0, None), ("ignore", 2, 6, 300.0, None)]
    for num, (mode, amount, correct, tokens, bounds) in enumerate(cells):
        amount_key = "budget.times" if mode == "ignore" else "budget.tokens"
        extra = {} if bounds is None else {"budget_bounds": bounds}
        _write_cell(sweep, num, [f"budget={mode}", f"{amount_key}={amount}"], status="done",
                    results=[_result("embedded", correct, 8, tokens)], **extra)
    report = write_report(sweep).read_text()
    methods = {row.axis["method"]: {m.key: value for m, value in row.values.items()}
               for row in method_table(build_table(collect_cells(sweep))).rows}
    assert set(methods) == {"budget=token_conditional", "budget=rejection"}
    token = methods["budget=token_conditional"]
    assert token["embedded.control"] == pytest.approx(2 / 3) and token["embedded.performance"] == 0.5
    assert token["embedded.scaling"] == pytest.approx((0.25 / 50 + 0.25 / 130 + 0) / 3)
    assert methods["budget=rejection"] == pytest.approx({"embedded.scaling": 0.25 / 60, "embedded.performance": 0.625})
    section = report.split("## Methods across budgets")[1]
    assert "| budget=token_conditional | 66.7 | 230.77 | 50.0 |" in section and "| budget=rejection | – | 416.67 | 62.5 |" in section
    assert r"\multicolumn{3}{c}{embedded}" in (sweep / "report.tex").read_text().split("methods across budgets")[1]


def test_sweep_end_writes_the_report_and_exits_non_zero_for_unfinished_cells(sweep: Path):
    with pytest.raises(SystemExit, match=r"2 cell\(s\) failed or did not finish \(3: failed, 5: missing\)"):
        ReportAtSweepEnd().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}}))
    assert (sweep / "report.csv").exists() and (sweep / "report.tex").exists()


def test_cli_renders_a_sweep(sweep: Path):
    result = subprocess.run([sys.executable, "-m", "s1x.report", str(sweep)], cwd=ROOT, capture_output=True, text=True,
                            check=True)
    assert "| 4 | budget=scale budget.caps=[32,64,128] | done |" in result.stdout
    assert _csv(sweep)["2"]["embedded.accuracy"] == "0.375"
    assert not (sweep / "wandb").exists()  # its cells did not log to W&B


def test_report_is_logged_to_wandb_where_its_cells_were(sweep: Path, monkeypatch: pytest.MonkeyPatch):
    import wandb

    from tests.wandb_log import offline_runs

    logger = {"kind": "wandb", "project": "s1x-tests", "entity": None}
    (sweep / "0" / "resolved_config.yaml").write_text(OmegaConf.to_yaml({"model": {"name": "tiny"}, "logger": logger}))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    write_report(sweep)
    wandb.teardown()  # run.finish() can return before the offline log is on disk; exiting waits for it, as this does
    [run] = offline_runs(sweep)
    assert (run["group"], run["job_type"], run["name"]) == (sweep.name, "report", f"{sweep.name}-report")
    summary = run["summary"]
    assert (summary["report/_type"], summary["report/nrows"]) == ("table-file", 6)
    assert {summary[f"{name}/_type"] for name in ("scaling", "accuracy")} == {"image-file"}
    table = json.loads((run["dir"] / "files" / summary["report/path"]).read_text())
    with open(sweep / "report.csv") as handle:
        header = next(csv.reader(handle))
    assert table["columns"] == header
    rows = {row[0]: dict(zip(header, row)) for row in table["data"]}
    assert rows["0"]["embedded.accuracy"] == 0.5 and rows["4"]["embedded.performance"] == 0.625
    assert (rows["3"]["status"], rows["3"]["embedded.accuracy"]) == ("failed", None)
    assert rows["5"]["status"] == "missing"
    for name in ("scaling", "accuracy"):
        image = run["dir"] / "files" / summary[f"{name}/path"]
        assert matplotlib.image.imread(image).shape == matplotlib.image.imread(sweep / f"{name}.png").shape


def test_reading_states_each_curve_and_the_leader_with_their_numbers(tmp_path: Path):
    """The paragraph under the report: from cap 8 to two extensions, intervals at both ends, and who leads."""
    from s1x.report.reading import reading

    sweep = tmp_path / "sweep"
    trained, trained_curve = _scale_results({"embedded": {8: (0, 8.0), 32: (6, 30.2)}})
    trained.append(_result("embedded", 7, 8, 114.4, Point(extensions=2)))
    base = [_result("embedded", 0, 8, 1.7, Point(cap=8)), _result("embedded", 0, 8, 42.0, Point(extensions=2))]
    _write_cell(sweep, 0, ["train=none"], status="done", results=base, scaling={"embedded": {"control": 1, "scaling": None, "performance": 0}})
    _write_cell(sweep, 1, ["train=full"], status="done", results=trained, scaling=trained_curve)
    paragraph = reading(build_table(collect_cells(sweep)))
    assert "train=full on embedded: accuracy goes from 0.0 % at 8 thinking tokens (cap 8) to 87.5 % at 114 (2 extension(s)), +87.5 points" in paragraph
    assert "the 95 % intervals at the two ends do not overlap" in paragraph and "Scaling –" in paragraph
    assert "At the largest budget, train=full leads on embedded with 87.5 % against 0.0 % for train=none (intervals do not overlap)." in paragraph
    assert "## Reading" in write_report(sweep).read_text()


def _records(eval_dir: Path, result: dict) -> list[dict]:
    return [json.loads(line) for line in open(eval_dir / result["records"])]


def test_a_benchmark_named_with_dots_and_ats_goes_through_evaluate_and_the_report(tiny_model_dir: Path, tmp_path: Path):
    """`my.bench@v2` on the tiny model: a budget=scale cell (caps 2 and 6, the model's own ending) and a cell with
    two samples per question; its results are found by field, its rows and plots carry its values."""
    from s1x.config import BenchmarkConfig, BudgetMode, EvalConfig, ExtendConfig, ModelConfig
    from s1x.evaluate.modes import budget_config
    from s1x.embedded import generate_benchmark
    from s1x.evaluate.stage import evaluate

    name = "my.bench@v2"
    source = tmp_path / "bench.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in generate_benchmark(3, seed=1)))
    specs = {name: BenchmarkConfig(file=str(source), question="question", answer="answer", id="id")}
    limits = {"benchmarks": [name], "benchmark_specs": specs, "max_thinking_tokens": 10, "max_answer_tokens": 4}
    cells = [(["budget=scale"], EvalConfig(**limits), budget_config(BudgetMode.scale, caps=[6, 2], extensions=[0])),
             (["budget=max", "eval.samples=2"], EvalConfig(**limits, temperature=1.0, samples=2),
              budget_config(BudgetMode.max, tokens=6))]
    sweep, evaluated = tmp_path / "sweep", []
    for num, (overrides, eval_cfg, budget) in enumerate(cells):
        out = tmp_path / "eval" / str(num)
        out.mkdir(parents=True)
        evaluate(eval_cfg, budget, ExtendConfig(name="wait", string="Wait"), ModelConfig(name="tiny", path=str(tiny_model_dir)),
                 str(tiny_model_dir), out)
        metrics = json.loads((out / "metrics.json").read_text())
        _write_cell(sweep, num, overrides, status="done", results=metrics["results"], scaling=metrics.get("scaling", {}),
                    budget_bounds=metrics["budget_bounds"])
        evaluated.append((out, metrics))

    (scale_dir, scale), (votes_dir, votes) = evaluated
    assert [(r["benchmark"], r["point"], r["method"], r["samples"]) for r in scale["results"]] == [
        (name, {"cap": 2}, "single", 1), (name, {"cap": 6}, "single", 1), (name, {"extensions": 0}, "single", 1)]
    assert [r["records"] for r in scale["results"]] == ["records/0.jsonl", "records/1.jsonl", "records/2.jsonl"]
    for result in scale["results"]:
        records = _records(scale_dir, result)
        assert result["n"] == len(records) == 3 and {r["id"] for r in records} == {f"{name}-{row['id']}" for row in generate_benchmark(3, seed=1)}
        assert result["accuracy"] == sum(r["correct"] for r in records) / 3
        assert result["mean_thinking_tokens"] == pytest.approx(sum(r["thinking_tokens"] for r in records) / 3)
        assert result["point"].get("cap", 10) >= max(r["thinking_tokens"] for r in records)
    assert set(scale["scaling"]) == {name} and scale["scaling"][name]["performance"] == max(r["accuracy"] for r in scale["results"])

    single, *majority = votes["results"]
    records = _records(votes_dir, single)
    assert (single["point"], single["method"], single["samples"], single["n"]) == (None, "single", 2, 6) and len(records) == 6
    assert [(r["method"], r["samples"], r["n"], r["records"]) for r in majority] == [("majority", 1, 3, "records/0.jsonl"),
                                                                                    ("majority", 2, 3, "records/0.jsonl")]
    first = [r for r in records if r["sample"] == 0]
    assert majority[0]["accuracy"] == sum(bool(r["correct"] and r["extracted"]) for r in first) / 3  # a vote of one
    assert majority[1]["mean_thinking_tokens"] == sum(r["thinking_tokens"] for r in records) / 3  # both samples' thinking

    report = write_report(sweep).read_text()
    rows = _csv(sweep)
    for label, result in zip(("2", "6", "+0"), scale["results"]):  # 2, 6 and 10 thinking tokens: each in its column
        assert float(rows["0"][f"{name}@{label}.mean_thinking_tokens"]) == result["mean_thinking_tokens"]
        assert float(rows["0"][f"{name}@{label}.accuracy"]) == result["accuracy"]
    assert float(rows["0"][f"{name}.performance"]) == scale["scaling"][name]["performance"] and rows["0"][f"{name}.accuracy"] == ""
    assert float(rows["1"][f"{name}.accuracy"]) == single["accuracy"] and int(rows["1"][f"{name}.n"]) == 6
    assert float(rows["1"][f"{name} maj@2.accuracy"]) == majority[1]["accuracy"] and rows["1"][f"{name}@2.accuracy"] == ""
    header = next(line for line in report.splitlines() if line.startswith("| cell"))
    assert header.index(f"{name} accuracy (%)") < header.index(f"{name} maj@1 accuracy (%)") < header.index(f"{name}@2 accuracy (%)") \
        < header.index(f"{name}@6 accuracy (%)") < header.index(f"{name}@+0 accuracy (%)")
    assert _tex_rows(sweep)[1][:4] == ["max", "2", f"{100 * single['accuracy']:.1f}", f"{100 * majority[0]['accuracy']:.1f}"]
    assert f"{name}@" not in (sweep / "report.tex").read_text()  # the curve's points are in the CSV, Markdown and plot
    panels = scaling_panels(build_table(collect_cells(sweep)))
    assert panels == {name: {
        "budget=scale": [(r["mean_thinking_tokens"], r["accuracy"]) for r in scale["results"]],
        "budget=max eval.samples=2": [(single["mean_thinking_tokens"], single["accuracy"])],
        "budget=max eval.samples=2 majority voting": [(r["mean_thinking_tokens"], r["accuracy"]) for r in majority]}}
    for plot in ("scaling.png", "accuracy.png"):
        assert matplotlib.image.imread(sweep / plot).std() > 0
    assert f"budget=scale on {name}: accuracy goes from" in report


# Which of the grid's cells (random-wait, random-hmm, s1k-wait, s1k-hmm) get a problem right at +2, and for how many
# problems of 100: 23 vs 10 answers only s1k or only random got right, 10 vs 5 only wait or only hmm (worked below).
GRID_OUTCOMES = {(1, 1, 1, 1): 30, (1, 1, 0, 0): 5, (0, 0, 1, 1): 10, (0, 0, 1, 0): 2, (0, 0, 0, 1): 1,
                 (1, 0, 1, 0): 4, (0, 1, 0, 1): 2, (0, 0, 0, 0): 46}
GRID_CELLS = [("random", "wait"), ("random", "hmm"), ("s1k", "wait"), ("s1k", "hmm")]


def _write_evaluated_cell(sweep: Path, num: int, overrides: list[str], correct: dict[Point, set[int]],
                          scaling: float) -> None:
    """A finished budget=curve cell with its eval stage on disk: per point, records/<i>.jsonl of 100 problems
    (right where listed in `correct`) and its result, as evaluate writes them."""
    eval_dir = sweep.parent / "store" / "eval" / str(num)
    (eval_dir / "records").mkdir(parents=True)
    results = []
    for i, (point, right) in enumerate(correct.items()):
        path = f"records/{i}.jsonl"
        tokens = 100.0 * (i + 1)
        (eval_dir / path).write_text("".join(json.dumps({"id": f"embedded-{q}", "sample": 0, "correct": q in right,
                                                         "thinking_tokens": tokens}) + "\n" for q in range(100)))
        results.append(Result("embedded", point, Method.single, 1, path, 100, len(right) / 100, tokens,
                              wilson_interval(len(right), 100)).to_dict())
    _write_cell(sweep, num, overrides, status="done", results=results, stages={"eval": {"path": str(eval_dir)}},
                scaling={"embedded": {"control": 1.0, "scaling": scaling, "performance": max(len(r) for r in correct.values()) / 100}})


@pytest.fixture
def grid(tmp_path: Path) -> Path:
    """`data=random,s1k extend=wait,hmm` on budget=curve, 100 problems. At +2: random 39 and 37 %, s1k 46 and 43 %
    (wait, hmm). Pooled over extend, s1k against random: 89 vs 76 of 200 right, discordant 10 + 2 (wait) + 10 + 1
    (hmm) = 23 vs 5 + 5 = 10. Pooled over data, wait against hmm: 85 vs 80 of 200, discordant 4 + 2 + 4 = 10 vs
    2 + 1 + 2 = 5. At cap 16 every cell gets the first 10 right, at +0 the first 20 (the verdict must not read these)."""
    sweep = tmp_path / "grid"
    problems = iter(range(100))
    right_at_end: list[set[int]] = [set(), set(), set(), set()]
    for outcome, count in GRID_OUTCOMES.items():
        for q in [next(problems) for _ in range(count)]:
            for cell, is_right in enumerate(outcome):
                if is_right:
                    right_at_end[cell].add(q)
    for num, ((data, extend), right, scaling) in enumerate(zip(GRID_CELLS, right_at_end, [1e-4, 1e-4, 2e-4, 3e-4])):
        correct = {Point(cap=16): set(range(10)), Point(extensions=0): set(range(20)), Point(extensions=2): right}
        _write_evaluated_cell(sweep, num, [f"data={data}", f"extend={extend}"], correct, scaling)
    return sweep


def test_report_opens_with_the_paired_verdict_of_each_swept_axis(grid: Path):
    """s1k beats random at +2 (p = 0.035, exact McNemar on 23 vs 10); wait and hmm differ undetectably
    (p = 2 * sum_{i<=5} C(15, i) / 2^15 = 0.30). Scaling is each value's mean over its cells."""
    report = write_report(grid).read_text()
    with open(grid / "comparisons.csv") as handle:
        rows = {row["axis"]: row for row in csv.DictReader(handle)}
    data, extend = rows["data"], rows["extend"]
    assert (data["series"], data["best"], data["other"], data["cell_pairs"], data["n"]) == ("embedded@+2", "s1k", "random", "2", "200")
    assert (float(data["best_accuracy"]), float(data["other_accuracy"]), data["best_only"], data["other_only"]) == (0.445, 0.38, "23", "10")
    assert float(data["p_value"]) == pytest.approx(0.03508, abs=1e-5)
    # each cell pair's problems are units of their own: d -+ 1.96 standard errors (tests/test_paired.py's case)
    low, high = float(data["difference_ci95_low"]), float(data["difference_ci95_high"])
    standard_error = math.sqrt(33 / 200 - (13 / 200) ** 2) / math.sqrt(200)
    assert (low, high) == pytest.approx((0.065 - 1.96 * standard_error, 0.065 + 1.96 * standard_error), abs=0.005)
    assert (extend["best"], extend["other"], extend["best_only"], extend["other_only"]) == ("wait", "hmm", "10", "5")
    assert float(extend["p_value"]) == 0.3017578125 and float(extend["difference_ci95_low"]) < 0

    assert report.startswith(f"# s1x report: {grid}\n\n## Verdict\n\n- **Selection (data)** on embedded at +2, pooled over "
                             f"extend: s1k beats random by 6.5 points (44.5 vs 38.0 %, paired p = 0.035, 23 vs 10 "
                             f"discordant of 200; 95 % interval +{100 * low:.1f} to +{100 * high:.1f} points). "
                             f"Scaling (%/1K tokens): s1k 25.00, random 10.00 (means over their cells).\n")
    assert ("- **Extend string (extend)** on embedded at +2, pooled over data: no detectable difference "
            "between wait and hmm (p = 0.3; 42.5 vs 40.0 %, 10 vs 5 discordant of 200). Scaling (%/1K tokens): hmm 20.00, wait 15.00") in report
    assert report.index("## Verdict") < report.index("| cell")
    # the reading's leader at the largest budget, s1k-wait (46 %) against s1k-hmm (43 %): 6 vs 3 discordant
    assert ("At the largest budget, data=s1k extend=wait leads on embedded with 46.0 % against 43.0 % for data=s1k "
            "extend=hmm (intervals overlap; paired p = 0.51, 6 vs 3 discordant of 100; no detectable difference). "
            "All 4 paired comparison(s) on embedded@+2 show no detectable difference after Holm's correction.") in report


def test_verdict_pairs_only_cells_whose_records_are_there(grid: Path):
    """random-hmm's evaluation gone from the store: each axis is compared in the one group left, on 100 answers,
    where s1k's lead over random (12 vs 5 discordant) is no longer detectable."""
    shutil.rmtree(grid.parent / "store" / "eval" / "1")
    report = write_report(grid).read_text()
    assert ("- **Selection (data)** on embedded at +2: no detectable difference between s1k and random (p = 0.14; 46.0 vs "
            "39.0 %, 12 vs 5 discordant of 100).") in report
    assert "- **Extend string (extend)** on embedded at +2: no detectable difference between wait and hmm (p = 0.51; 46.0 vs 43.0 %" in report


def test_cells_without_records_get_no_verdict(sweep: Path):
    """The methods sweep's cells name no eval stage: nothing to pair, so no verdict and no comparisons.csv."""
    report = write_report(sweep).read_text()
    assert "## Verdict" not in report and not (sweep / "comparisons.csv").exists()


def test_verdict_names_the_winner_of_the_pair_even_where_the_best_on_average_trails():
    """The best value on average over all its cells can lose where it is paired (other groups lifted its mean):
    the sentence then names the other value as the winner, with the numbers read from its side."""
    from s1x.report.paired import PairedComparison
    from s1x.report.verdict import AxisComparison, _statement

    trailing = PairedComparison(100, 0.30, 0.42, 2, 14, mcnemar_p(2, 14), (-0.2, -0.05))
    text = _statement(AxisComparison("data", Series("embedded", Point(extensions=2)), "s1k", "random", 1, trailing))
    assert text == ("random beats s1k by 12.0 points (42.0 vs 30.0 %, paired p = 0.0042, 14 vs 2 discordant of 100; "
                    "95 % interval +5.0 to +20.0 points)")


def test_every_pair_of_cells_that_differ_in_one_axis_is_compared_at_each_point(grid: Path):
    """2 data pairs (one per extend) + 2 extend pairs (one per data), at cap 16, +0 and +2: 12 comparisons. At +2:
    random-wait vs s1k-wait 5 vs 12 discordant, p = 2 * sum_{i<=5} C(17, i) / 2^17 = 0.1435; s1k-wait vs s1k-hmm
    6 vs 3, p = 2 * 130 / 512 = 0.5078. Holm over 12 lifts every p to 1: the grid shows no real difference."""
    report, tex = write_report(grid).read_text(), (grid / "report.tex").read_text()
    with open(grid / "pairs.csv") as handle:
        rows = {(r["axis"], r["where"], r["series"]): r for r in csv.DictReader(handle)}
    assert len(rows) == 12
    data = rows["data", "extend=wait", "embedded@+2"]
    assert (data["a"], data["b"], data["a_only"], data["b_only"], data["n"]) == ("random", "s1k", "5", "12", "100")
    assert float(data["p_value"]) == pytest.approx(18804 / 131072) and float(data["p_holm"]) == 1.0
    extend = rows["extend", "data=s1k", "embedded@+2"]
    assert (extend["a"], extend["b"], extend["a_only"], extend["b_only"]) == ("wait", "hmm", "6", "3")
    assert float(extend["p_value"]) == 260 / 512
    same = rows["extend", "data=random", "embedded@16"]  # every cell gets the first 10 right at cap 16
    assert (same["a_only"], same["b_only"], float(same["p_value"]), float(same["difference"])) == ("0", "0", 1.0, 0.0)
    assert "## Paired comparisons" in report and "corrects for the 12 comparisons" in report
    assert "| data | extend=wait | embedded@+2 | random | s1k | 39.0 | 46.0 | -7.0 (" in report
    assert "embedded@+2 & random & s1k & 39.0 & 46.0" in tex and r"\end{tabular}" in tex


def test_reading_names_the_real_differences_with_their_interval_and_counts_the_rest():
    from s1x.report.pairwise import CellPair
    from s1x.report.reading import _real_differences

    end, start = Series("embedded", Point(extensions=2)), Series("embedded", Point(cap=16))
    behind = PairedComparison(200, 0.38, 0.445, 10, 23, 0.035, (-0.11, -0.02))  # random trails s1k
    even = PairedComparison(200, 0.425, 0.40, 10, 5, 0.30, (-0.01, 0.06))
    pairs = [CellPair("data", "extend=wait", end, "random", "s1k", behind, 0.04),
             CellPair("extend", "data=s1k", end, "wait", "hmm", even, 0.6),
             CellPair("data", "extend=wait", start, "random", "s1k", even, 0.9)]  # not the last point: not read
    assert _real_differences(pairs) == [
        "On embedded@+2 with extend=wait, data=s1k beats data=random by 6.5 points (2.0 to 11.0, Holm-corrected p = 0.04).",
        "The other 1 paired comparison(s) on embedded@+2 show no detectable difference after Holm's correction."]
