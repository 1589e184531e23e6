"""Bad input the README's table lists and the tests elsewhere did not cover: each error names the file, line
or key, and a single run says it in one line before any stage runs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from s1x.config import ConfigError, PoolConfig, PoolSource
from s1x.select.pool import load_pool
from tests.conftest import ROOT, run_s1x, tiny_args

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
