"""The whole CLI on a tiny model: a sweep shares stages through the store, a rerun does no work."""
from __future__ import annotations

import csv
import json
import re
import statistics
from pathlib import Path

import pytest

from s1x.evaluate.results import Point
from s1x.report.cells import collect_cells
from tests.conftest import ROOT, run_s1x, stage_lines, tiny_args


def test_sweep_trains_once_per_selection_and_rerun_does_no_work(tiny_model_dir: Path, tmp_path: Path):
    args = ["-m", "data=random,longest", "extend=wait,hmm", *tiny_args(tiny_model_dir, tmp_path)]
    first = run_s1x([*args, f"hydra.sweep.dir={tmp_path}/sweep1"], cwd=ROOT)
    stages = stage_lines(first.stderr + first.stdout)
    assert stages.count(("train", "done")) == 2 and stages.count(("train", "reused")) == 2
    assert stages.count(("select", "done")) == 2 and stages.count(("eval", "done")) == 4
    assert len(list((tmp_path / "store" / "train").glob("[0-9a-f]*"))) == 2
    # s1x's own line per logged step; not transformers' {'loss': ...} dicts under the progress bar
    assert re.search(r"train: step \d+/\d+ +loss", first.stderr + first.stdout) and "{'loss'" not in first.stdout + first.stderr

    cells = collect_cells(tmp_path / "sweep1")
    assert len(cells) == 4 and {c["status"] for c in cells} == {"done"}
    report = (tmp_path / "sweep1" / "report.md").read_text()
    assert len([line for line in report.splitlines() if line.startswith("| ") and "done" in line]) == 4
    assert "embedded accuracy (%)" in report and "extend=hmm" in report

    second = run_s1x([*args, f"hydra.sweep.dir={tmp_path}/sweep2"], cwd=ROOT)
    stages = stage_lines(second.stderr + second.stdout)
    assert len(stages) == 12 and {status for _, status in stages} == {"reused"}
    assert [c["results"] for c in collect_cells(tmp_path / "sweep2")] == [c["results"] for c in cells]


def test_single_run_writes_records_metrics_and_report(tiny_model_dir: Path, tmp_path: Path):
    run_dir = tmp_path / "run"
    run_s1x([*tiny_args(tiny_model_dir, tmp_path), "train=none", f"hydra.run.dir={run_dir}"], cwd=ROOT)
    cell = json.loads((run_dir / "cell.json").read_text())
    assert cell["status"] == "done" and "train" not in cell["stages"]
    eval_dir = Path(cell["stages"]["eval"]["path"])
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    [result] = metrics["results"]
    records = [json.loads(line) for line in open(eval_dir / result["records"])]
    assert (result["benchmark"], result["point"], result["method"]) == ("embedded", None, "single")
    assert len(records) == 4 == result["n"] and result["accuracy"] == sum(r["correct"] for r in records) / 4
    assert cell["results"] == metrics["results"]
    assert cell["budget_bounds"] == metrics["budget_bounds"] == [12, None]  # budget=min budget.tokens=12
    for r in records:
        assert r["thinking_tokens"] >= 12 or r["hit_limit"]
        assert r["prompt"].endswith("<|im_start|>think\n")
    assert (run_dir / ".hydra" / "config.yaml").exists() and (run_dir / "resolved_config.yaml").exists()
    assert "| . | " in (run_dir / "report.md").read_text()
    assert metrics["provenance"]["engine"] == "hf" and metrics["provenance"]["chat_template"]


@pytest.mark.slow
def test_embedded_default_with_real_smollm2(tmp_path: Path):
    """The real SmolLM2 path (GGUF conversion, training, evaluation) on a handful of examples."""
    run_dir = tmp_path / "run"
    result = run_s1x([f"store_dir={tmp_path}/store", "data.size=8", "train.epochs=1", "train.global_batch_size=8",
                      "eval.limit=4", "eval.max_thinking_tokens=80", f"hydra.run.dir={run_dir}"], cwd=ROOT)
    cell = json.loads((run_dir / "cell.json").read_text())
    assert cell["status"] == "done" and set(cell["stages"]) == {"select", "train", "eval"}
    stats = json.loads((Path(cell["stages"]["train"]["path"]) / "train_stats.json").read_text())
    assert stats["steps"] == 1 and stats["examples"] == 8 and stats["train_loss"] > 0
    # The default budget is the curve: caps 16, 32, 64, the model's own ending and 1 and 2 extensions, on vLLM.
    points = {Point(**r["point"]): r for r in cell["results"]}
    assert list(points) == [*(Point(cap=cap) for cap in (16, 32, 64)), *(Point(extensions=k) for k in (0, 1, 2))]
    assert all(r["benchmark"] == "embedded" and r["n"] == 4 for r in points.values())
    assert 0 < points[Point(extensions=2)]["mean_thinking_tokens"] <= 80
    assert all(points[Point(cap=cap)]["mean_thinking_tokens"] <= cap for cap in (16, 32, 64))
    assert points[Point(extensions=1)]["extensions"] <= 4 and cell["scaling"]["embedded"]["control"] == 1.0
    assert "embedded@16 accuracy (%)" in (run_dir / "report.md").read_text()
    assert "report" in result.stderr + result.stdout


def test_s1k_difficulty_comes_from_evaluating_the_base_model(tiny_model_dir: Path, tmp_path: Path):
    args = [*tiny_args(tiny_model_dir, tmp_path, budget=("budget=none",)), "train=none", "data=s1k", "data.size=8",
            "pool.size=40", f"data.difficulty_models=[{tiny_model_dir}]", "eval.max_thinking_tokens=8"]
    first = run_s1x([*args, f"hydra.run.dir={tmp_path}/run1"], cwd=ROOT)
    assert re.search(r"difficulty done .*tiny-llama.* on \d+ pool questions", " ".join((first.stderr + first.stdout).split()))
    cell = json.loads((tmp_path / "run1" / "cell.json").read_text())
    selection = Path(cell["stages"]["select"]["path"])
    manifest = json.loads((selection / "manifest.json").read_text())
    assert manifest["strategy"] == "s1k" and manifest["size"] == 8
    assert sum(manifest["filters"]["quality"].values()) > 0
    records = [json.loads(line) for d in (tmp_path / "store" / "difficulty").glob("[0-9a-f]*") for line in open(d / "records.jsonl")]
    assert len(records) == 40 - sum(manifest["filters"]["quality"].values()) - sum(manifest["filters"]["decontamination"].values())
    solved = {r["id"] for r in records if r["correct"]}
    assert not solved & set(manifest["ids"])
    second = run_s1x([*args, "data.seed=1", f"hydra.run.dir={tmp_path}/run2"], cwd=ROOT)
    assert re.search(r"difficulty\s+reused", second.stderr + second.stdout)


def test_s1k_on_the_embedded_pool_scores_the_base_model_by_default(tiny_model_dir: Path, tmp_path: Path):
    """No pool column and no data.difficulty_models: the configured base model answers each candidate with no
    thinking, and what it gets right is dropped."""
    args = [*tiny_args(tiny_model_dir, tmp_path, budget=("budget=none",)), "train=none", "data=s1k", "data.size=8",
            "pool.size=60", "eval.max_thinking_tokens=8", f"hydra.run.dir={tmp_path}/run"]
    result = run_s1x(args, cwd=ROOT)
    assert re.search(r"difficulty done .* answering \d+ pool questions without thinking", " ".join((result.stderr + result.stdout).split()))
    cell = json.loads((tmp_path / "run" / "cell.json").read_text())
    manifest = json.loads((Path(cell["stages"]["select"]["path"]) / "manifest.json").read_text())
    records = [json.loads(line) for d in (tmp_path / "store" / "difficulty").glob("[0-9a-f]*") for line in open(d / "records.jsonl")]
    assert manifest["size"] == 8 and manifest["filters"]["difficulty"]["no_difficulty_signal"] == 0
    assert manifest["filters"]["difficulty"]["solved_by_base_models"] == sum(r["correct"] for r in records)
    assert not {r["id"] for r in records if r["correct"]} & set(manifest["ids"])


def test_scale_budget_reports_every_cap_and_the_curve_metrics(tiny_model_dir: Path, tmp_path: Path):
    run_dir = tmp_path / "run"
    run_s1x([*tiny_args(tiny_model_dir, tmp_path, budget=("budget=scale", "budget.caps=[4,8,16]")), "train=none",
             f"hydra.run.dir={run_dir}"], cwd=ROOT)
    cell = json.loads((run_dir / "cell.json").read_text())
    assert [(r["benchmark"], r["point"], r["method"]) for r in cell["results"]] == [
        ("embedded", {"cap": cap}, "single") for cap in (4, 8, 16)]
    for result in cell["results"]:
        assert result["mean_thinking_tokens"] <= result["point"]["cap"]
    curve = cell["scaling"]["embedded"]
    assert curve["control"] == 1.0 and curve["performance"] == max(r["accuracy"] for r in cell["results"])
    report = (run_dir / "report.md").read_text()
    assert "embedded@16 accuracy (%)" in report and "embedded Control (%)" in report


def test_wandb_offline_runs_per_cell_and_stage_grouped_by_sweep(tiny_model_dir: Path, tmp_path: Path):
    from tests.wandb_log import offline_runs

    sweep = tmp_path / "sweep"
    env_args = [*tiny_args(tiny_model_dir, tmp_path), "logger=wandb", f"hydra.sweep.dir={sweep}"]
    run_s1x(["-m", "data=random,longest", *env_args], cwd=ROOT, env={"WANDB_MODE": "offline"})
    runs = offline_runs(sweep)
    assert len(runs) == 7  # 2 cells x (select, train, eval), and the report
    assert {r["group"] for r in runs} == {sweep.name}
    assert sorted(r["job_type"] for r in runs) == ["eval", "eval", "report", "select", "select", "train", "train"]
    for cell in collect_cells(sweep):
        cell_runs = [r for r in runs if r["dir"].relative_to(sweep).parts[0] == cell["dir"]]
        assert len(cell_runs) == 3
        assert {r["config"]["data.strategy"] for r in cell_runs} == {cell["choices"]["data"]}
        evaluation = next(r for r in cell_runs if r["job_type"] == "eval")
        [result] = cell["results"]
        assert evaluation["summary"]["embedded.accuracy"] == result["accuracy"]
        assert evaluation["config"]["store_key"] == cell["stages"]["eval"]["key"]
        table = next(evaluation["dir"].glob("files/media/table/embedded/samples_*.table.json"))
        assert len(json.loads(table.read_text())["data"]) == 4


def test_seeds_repeat_each_cell_in_one_engine_and_report_mean_and_std(tiny_model_dir: Path, tmp_path: Path):
    """eval.seeds=[0,1,2] at temperature 0.6: each cell's 4 problems are answered once per seed (samples 0-2), the
    tables show the seeds' mean ± std beside the pooled interval, and the paired comparisons use all 12 answers."""
    args = ["-m", "extend=wait,hmm", *tiny_args(tiny_model_dir, tmp_path), "train=none", "eval.seeds=[0,1,2]",
            "eval.temperature=0.6", f"hydra.sweep.dir={tmp_path}/sweep"]
    run_s1x(args, cwd=ROOT)
    cells = collect_cells(tmp_path / "sweep")
    for cell in cells:
        [result] = cell["results"]
        records = [json.loads(line) for line in open(Path(cell["stages"]["eval"]["path"]) / result["records"])]
        assert sorted((r["seed"], r["sample"]) for r in records) == sorted((s, s) for s in (0, 1, 2) for _ in range(4))
        per_seed = [sum(r["correct"] for r in records if r["seed"] == s) / 4 for s in (0, 1, 2)]
        assert result["accuracy_seed_mean"] == pytest.approx(sum(per_seed) / 3) == pytest.approx(result["accuracy"])
        assert result["accuracy_seed_std"] == pytest.approx(statistics.stdev(per_seed))
    report = (tmp_path / "sweep" / "report.md").read_text()
    assert re.search(r"\(\d+\.\d–\d+\.\d; seeds \d+\.\d ± \d+\.\d\)", report)
    assert "$\\pm$" in (tmp_path / "sweep" / "report.tex").read_text()
    with open(tmp_path / "sweep" / "pairs.csv") as handle:
        assert [row["n"] for row in csv.DictReader(handle)] == ["12"]


def test_seeds_under_greedy_decoding_stop_before_running(tmp_path: Path):
    result = run_s1x(["-m", "extend=wait,hmm", "eval.seeds=[0,1,2]", f"store_dir={tmp_path}/store",
                      f"hydra.sweep.dir={tmp_path}/sweep"], cwd=ROOT, check=False)
    assert result.returncode != 0 and "eval.seeds=[0, 1, 2]: give distinct seeds, several only with eval.temperature > 0" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "store").exists()
