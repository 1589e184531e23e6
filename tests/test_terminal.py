"""What the terminal shows is s1x: stage lines, progress bars, warnings. vLLM's INFO, from its engine processes
too, is in the cell's log file; `log_level=INFO` brings it back to the terminal; the setting enters no key."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from s1x.schemas import register
from s1x.keys import planned_keys
from s1x.validate import validated
from tests.conftest import CONF_DIR, ROOT, run_s1x

# vLLM's INFO in the log file's format (s1x/terminal.py), and in vLLM's own: "(EngineCore pid=4042) INFO 12-07 ..."
VLLM_INFO = re.compile(r"\]\[vllm[\w.]*\]\[INFO\]|\bINFO \d\d-\d\d \d\d:\d\d:\d\d \[\w+\.py:\d+\]")
ENGINE_START = "(EngineCore) Initializing a V1 LLM engine"  # logged by vLLM's engine core process


def _vllm_cell(tiny_model_dir: Path, tmp_path: Path, *overrides: str):
    """A cell on the tiny model through vLLM: no training, the curve's 5 points on 2 questions."""
    run_dir = tmp_path / "run"
    result = run_s1x(["model=tiny", f"model.path={tiny_model_dir}", f"store_dir={tmp_path}/store",
                      f"cache_dir={tmp_path}/cache", "train=none", "data.size=8", "eval.limit=2",
                      "eval.max_thinking_tokens=24", "eval.max_answer_tokens=6", "budget.caps=[4,8]",
                      "eval.gpu_memory_utilization=0.05", f"hydra.run.dir={run_dir}", *overrides], cwd=ROOT)
    return result.stdout, result.stderr, (run_dir / "__main__.log").read_text()


@pytest.mark.slow
def test_terminal_shows_s1x_and_the_log_file_holds_vllm(tiny_model_dir: Path, tmp_path: Path):
    stdout, stderr, log = _vllm_cell(tiny_model_dir, tmp_path)
    terminal = stdout + stderr
    assert re.search(r"\[s1x\]\[INFO\] - eval\s+done", terminal)
    assert not VLLM_INFO.search(terminal), [line for line in terminal.splitlines() if VLLM_INFO.search(line)][:3]
    assert "[transformers" not in terminal and "Model config LlamaConfig" not in terminal
    # the curve's answers after the main run, one bar: 5 points (caps 4, 8; +0, +1, +2) x 2 questions
    assert re.search(r"eval embedded branch answers: 100%.*\b10/10\b", stderr)
    assert len(VLLM_INFO.findall(log)) > 20 and ENGINE_START in log
    assert "[transformers.configuration_utils][INFO] - loading configuration file" in log
    assert re.search(r"\[s1x\]\[INFO\] - eval\s+done", log)


@pytest.mark.slow
def test_log_level_info_brings_the_libraries_back_to_the_terminal(tiny_model_dir: Path, tmp_path: Path):
    stdout, stderr, log = _vllm_cell(tiny_model_dir, tmp_path, "log_level=INFO")
    assert ENGINE_START in stdout and len(VLLM_INFO.findall(stdout)) > 20
    assert "[transformers.configuration_utils][INFO] - loading configuration file" in stdout
    assert ENGINE_START in log  # and still in the log file


def test_a_wrong_log_level_stops_the_run_naming_the_key(tmp_path: Path):
    result = run_s1x(["log_level=LOUD", f"store_dir={tmp_path}/store", f"hydra.run.dir={tmp_path}/run"],
                     cwd=ROOT, check=False)
    assert result.returncode != 0 and "log_level=LOUD: not a logging level" in result.stderr
    assert not (tmp_path / "store").exists()  # no stage ran


def test_log_level_enters_no_store_key():
    register()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        default = validated(compose(config_name="config"))
        loud = validated(compose(config_name="config", overrides=["log_level=DEBUG"]))
    assert loud.log_level == "DEBUG" and planned_keys(loud) == planned_keys(default)
