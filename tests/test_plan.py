"""While planning, s1x says per benchmark how many answers a cell gives and what difference a paired test detects."""
from __future__ import annotations

import pytest

from s1x.report.paired import detectable_difference
from tests.conftest import ROOT, run_s1x

AIME24 = ROOT.parent / "shared" / "data" / "aime24" / "test.jsonl"


def test_detectable_difference_solves_connors_sample_size_equation():
    """n d^2 = (1.96 sqrt(psi) + 0.8416 sqrt(psi - d^2))^2 at psi = 0.25: d = 0.2458 at n = 30 (by hand: 30 x 0.2458^2 =
    1.813 = (0.98 + 0.8416 x 0.4354)^2)."""
    d = detectable_difference(30)
    assert d == pytest.approx(0.2458, abs=5e-4)
    assert 30 * d * d == pytest.approx((1.959964 * 0.5 + 0.841621 * (0.25 - d * d) ** 0.5) ** 2, rel=1e-6)
    assert detectable_difference(200) == pytest.approx(0.0985, abs=5e-4)  # the embedded benchmark
    assert detectable_difference(200, discordance=0.1) < detectable_difference(200)


def test_a_sweep_plan_says_what_aime24_can_detect_before_anything_runs(tmp_path):
    result = run_s1x(["-m", "data=random,s1k", "eval.benchmarks=[aime24]", f"+eval.benchmark_files.aime24={AIME24}",
                      "hydra/launcher=slurm", "hydra.launcher.dry_run=true", f"store_dir={tmp_path}/store"], cwd=ROOT)
    output = result.stdout + result.stderr
    assert ("aime24: 30 problems x 1 sample(s) and seed(s): a paired test detects about 25 points between two cells "
            "(80 % power, p < 0.05, with 25 % of answers discordant); smaller differences") in output
    assert output.count("aime24: 30 problems") == 1 and not (tmp_path / "store").exists()


def test_seeds_narrow_what_a_benchmark_can_detect(tmp_path):
    """3 seeds x 30 problems at temperature 0.6: 90 answers, about 15 points (0.1457 by the same equation)."""
    result = run_s1x(["-m", "data=random,s1k", "eval.benchmarks=[aime24]", f"+eval.benchmark_files.aime24={AIME24}",
                      "eval.seeds=[0,1,2]", "eval.temperature=0.6", "hydra/launcher=slurm", "hydra.launcher.dry_run=true",
                      f"store_dir={tmp_path}/store"], cwd=ROOT)
    assert "aime24: 30 problems x 3 sample(s) and seed(s): a paired test detects about 15 points" in result.stdout + result.stderr
    assert detectable_difference(90) == pytest.approx(0.1457, abs=5e-4)
