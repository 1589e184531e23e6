"""Training's attention: the first of flash, flex and sdpa that runs here, or the one asked for; never in the key."""
from __future__ import annotations

from pathlib import Path

import pytest

from s1x.config import Attention, ConfigError
from s1x.keys import planned_keys
from s1x.train.attention import training_attention
from tests.conftest import validated_config


@pytest.mark.parametrize("gpu, flash, flex, chosen", [
    (True, True, True, "flash_attention_2"),
    (True, False, True, "flex_attention"),
    (True, False, False, "sdpa"),
    (False, True, True, "sdpa"),  # flash-attn needs a GPU; flex has no backward on CPUs
])
def test_auto_takes_the_first_that_runs(gpu: bool, flash: bool, flex: bool, chosen: str):
    assert training_attention(Attention.auto, gpu, flash, flex) == chosen


@pytest.mark.parametrize("requested, gpu, flash, why", [
    (Attention.flash, False, True, "needs a GPU"),
    (Attention.flash, True, False, "flash-attn is not installed"),
    (Attention.flex, False, False, "needs a GPU"),
])
def test_a_requested_attention_that_cannot_run_names_the_key(requested: Attention, gpu: bool, flash: bool, why: str):
    with pytest.raises(ConfigError, match=f"train.attention={requested.value}: {why}"):
        training_attention(requested, gpu, flash, True)
    assert training_attention(Attention.sdpa, gpu, flash, True) == "sdpa"


def test_attention_is_not_in_the_train_key(tmp_path: Path):
    keys = [planned_keys(validated_config(f"train.attention={a}", f"store_dir={tmp_path}")) for a in ("auto", "sdpa", "flex")]
    assert keys[0] == keys[1] == keys[2]
