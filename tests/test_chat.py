"""The s1 format and its loss mask, on a real tokenizer."""
from __future__ import annotations

from pathlib import Path

import pytest

from s1x.chat import IGNORE_INDEX, S1Format
from s1x.config import ConfigError, ModelConfig
from s1x.models import load_tokenizer


@pytest.fixture
def fmt(tiny_model_dir: Path) -> S1Format:
    return S1Format(load_tokenizer(str(tiny_model_dir)), ModelConfig(name="tiny", path=str(tiny_model_dir)))


def test_loss_mask_covers_exactly_the_assistant_part(fmt: S1Format):
    example = fmt.training_example("Compute 2 + 3.", "2 + 3 = 5.\nSo the answer is 5.", "The answer is 5.")
    ids, labels = example["input_ids"], example["labels"]
    masked = [i for i, label in enumerate(labels) if label == IGNORE_INDEX]
    learned = [i for i, label in enumerate(labels) if label != IGNORE_INDEX]
    # Masked tokens form a prefix ending with the opened assistant turn; the rest is learned as-is.
    assert masked == list(range(len(masked)))
    assert fmt.tokenizer.decode([ids[i] for i in masked]).endswith("<|im_start|>user\nCompute 2 + 3.<|im_end|>\n<|im_start|>assistant\n")
    assert [labels[i] for i in learned] == [ids[i] for i in learned]
    assert fmt.tokenizer.decode([ids[i] for i in learned]) == (
        "<|im_start|>think\n2 + 3 = 5.\nSo the answer is 5.\n<|im_start|>answer\nThe answer is 5.<|im_end|>"
    )
    # Concatenating the two parts tokenizes exactly like the whole text.
    assert ids == fmt.encode(fmt.chat_prefix("Compute 2 + 3.") + fmt.completion("2 + 3 = 5.\nSo the answer is 5.", "The answer is 5."))


def test_prompt_ends_with_think_start(fmt: S1Format):
    prompt = fmt.prompt("Compute 2 + 3.")
    assert prompt.startswith("<|im_start|>system\n")
    assert prompt.endswith("<|im_start|>assistant\n<|im_start|>think\n")


def test_multi_token_delimiter_is_rejected(tiny_model_dir: Path):
    with pytest.raises(ConfigError, match="model.think_end"):
        S1Format(load_tokenizer(str(tiny_model_dir)), ModelConfig(name="tiny", path=str(tiny_model_dir), think_end="END OF THINKING"))
