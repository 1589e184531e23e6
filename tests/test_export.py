"""Export round trip: a cell's trained model as GGUF loads back through transformers with the same tokens and
logits (within the type's rounding), and the Modelfile's template renders s1x's evaluation prompt."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from s1x.chat import S1Format
from s1x.config import ModelConfig
from s1x.export.__main__ import main
from s1x.export.gguf_file import rotary_rows
from s1x.export.modelfile import render, stop_words, template
from s1x.models import load_tokenizer

QUESTIONS = ["Start at 7, add 5, subtract 3.", "What is 12 + 30?", "Wait, let me check the last step."]


@pytest.fixture
def cell(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """A finished cell whose train stage is the tiny checkpoint, as `python -m s1x` leaves one."""
    cell = tmp_path / "cell"
    cell.mkdir()
    (cell / "cell.json").write_text(json.dumps({"status": "done", "stages": {"train": {"path": str(tiny_model_dir)}}}))
    (cell / "resolved_config.yaml").write_text(f"model:\n  name: tiny\n  path: {tiny_model_dir}\n")
    return cell


def _logits(model, ids: list[int]) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()


@pytest.mark.parametrize("kind, tolerance", [("f16", 2e-3), ("q8_0", 5e-2)])
def test_the_gguf_loads_back_with_the_same_tokens_and_logits(cell: Path, tiny_model_dir: Path, tmp_path: Path,
                                                             kind: str, tolerance: float):
    out = tmp_path / "export" / "model.gguf"
    assert main([str(cell), "--gguf", str(out), "--type", kind]) == 0
    tokenizer = AutoTokenizer.from_pretrained(out.parent, gguf_file=out.name)
    model = AutoModelForCausalLM.from_pretrained(out.parent, gguf_file=out.name, dtype=torch.float32)
    trained, reference = load_tokenizer(str(tiny_model_dir)), AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    fmt = S1Format(trained, ModelConfig(name="tiny", path=str(tiny_model_dir)))
    for question in QUESTIONS:
        ids = trained.encode(fmt.prompt(question), add_special_tokens=False)
        assert tokenizer.encode(fmt.prompt(question), add_special_tokens=False) == ids
        exported, original = _logits(model, ids), _logits(reference, ids)
        scale = np.abs(original).max()
        assert np.abs(exported - original).max() <= tolerance * scale, (kind, np.abs(exported - original).max(), scale)
        assert (exported.argmax(-1) == original.argmax(-1)).mean() >= 0.9
    sizes = {path.name: path.stat().st_size for path in out.parent.iterdir()}
    assert set(sizes) == {"model.gguf", "Modelfile"}


def test_q8_0_is_about_half_of_f16(cell: Path, tmp_path: Path):
    main([str(cell), "--gguf", str(tmp_path / "f16" / "m.gguf")])
    main([str(cell), "--gguf", str(tmp_path / "q8" / "m.gguf"), "--type", "q8_0"])
    ratio = (tmp_path / "q8" / "m.gguf").stat().st_size / (tmp_path / "f16" / "m.gguf").stat().st_size
    assert 0.5 < ratio < 0.62, ratio  # 34 bytes per 32 values against 64, plus the vocabulary both carry


def test_the_modelfile_renders_the_evaluation_prompt_and_stops_at_the_end_of_turn(cell: Path, tiny_model_dir: Path,
                                                                                  tmp_path: Path):
    main([str(cell), "--gguf", str(tmp_path / "model.gguf")])
    text = (tmp_path / "Modelfile").read_text()
    fmt = S1Format(load_tokenizer(str(tiny_model_dir)), ModelConfig(name="tiny", path=str(tiny_model_dir)))
    assert text.startswith("FROM ./model.gguf\n") and f'TEMPLATE """{template(fmt)}"""' in text
    for question in QUESTIONS:
        assert render(template(fmt), question) == fmt.prompt(question)
    assert template(fmt).endswith("<|im_start|>assistant\n<|im_start|>think\n")
    assert stop_words(fmt) == ["<|im_end|>"] and 'PARAMETER stop "<|im_end|>"' in text
    assert "<|im_start|>\"" not in text  # the end-of-thinking delimiter must not stop generation


def test_a_cell_without_a_trained_model_says_so(tmp_path: Path, capsys: pytest.CaptureFixture):
    (tmp_path / "cell.json").write_text(json.dumps({"status": "done", "stages": {"eval": {"path": "/x"}}}))
    assert main([str(tmp_path), "--gguf", str(tmp_path / "m.gguf")]) == 2
    assert "names no train output" in capsys.readouterr().err


def test_rotary_rows_interleave_each_heads_halves():
    weight = np.arange(8)[:, None].repeat(2, axis=1)  # 2 heads of 4 rows: halves (0,1 | 2,3) and (4,5 | 6,7)
    assert rotary_rows(weight, heads=2)[:, 0].tolist() == [0, 2, 1, 3, 4, 6, 5, 7]
