"""The train stage on the tiny model: packed batches, LoRA, bf16 autocast, throughput stats, config checks."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from s1x.chat import IGNORE_INDEX, S1Format
from s1x.config import ConfigError, DistributedConfig, DistributedStrategy, ModelConfig, TrainConfig, TrainMethod
from s1x.embedded import generate_pool
from s1x.models import load_model, load_tokenizer
from s1x.train.distributed import cpu_flags, uses_bf16
from s1x.train.packing import pack_batch, pad_batch
from s1x.train.stage import train

ROWS = generate_pool(8, 0)


def train_cfg(**overrides) -> TrainConfig:
    """Two optimizer steps of 4 examples, at a rate that moves the tiny model's weights visibly."""
    settings = dict(method=TrainMethod.full, epochs=1, learning_rate=1e-3, global_batch_size=4, micro_batch_size=2,
                    warmup_ratio=0, gradient_checkpointing=False)
    return TrainConfig(**{**settings, **overrides})


def run_train(model_dir: Path, out: Path, cfg: TrainConfig, dist: DistributedConfig | None = None) -> dict:
    """In fp32 unless `dist` says otherwise: the tests compare trainings to 1e-5, which bf16 autocast is not."""
    out.mkdir(parents=True)
    return train(cfg, ModelConfig(name="tiny", path=str(model_dir)), dist or DistributedConfig(bf16=False),
                 str(model_dir), ROWS, out, out.parent / f".{out.name}.checkpoints")


def examples(model_dir: Path, n: int) -> list[dict]:
    fmt = S1Format(load_tokenizer(str(model_dir)), ModelConfig(name="tiny", path=str(model_dir)))
    return [fmt.training_example(r["question"], r["trace"], r.get("attempt") or r["answer"]) for r in ROWS[:n]]


def sequence_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token loss of one sequence's logits against its labels."""
    return F.cross_entropy(logits[:-1], labels[1:], ignore_index=IGNORE_INDEX)


def test_packed_row_gives_every_sequence_its_own_loss(tiny_model_dir: Path):
    model = load_model(str(tiny_model_dir), "float32").eval()
    batch = examples(tiny_model_dir, 4)
    lengths = [len(e["input_ids"]) for e in batch]
    assert len(set(lengths)) == 4  # unequal lengths: padding and packing differ
    with torch.no_grad():
        alone = [sequence_loss(model(input_ids=torch.tensor([e["input_ids"]])).logits[0], torch.tensor(e["labels"]))
                 for e in batch]
        packed = pack_batch(batch)
        assert "attention_mask" not in packed and packed["input_ids"].shape == (1, sum(lengths))
        starts = [sum(lengths[:i]) for i in range(4)]
        assert packed["position_ids"][0, starts].tolist() == [0, 0, 0, 0]
        logits = model(**{k: v for k, v in packed.items() if k != "labels"}, use_cache=False).logits[0]
        in_row = [sequence_loss(logits[s:s + n], torch.tensor(e["labels"])) for s, n, e in zip(starts, lengths, batch)]
        padded = pad_batch(batch, 0)
        padded_loss = model(**padded).loss
        packed_loss = model(**packed, use_cache=False).loss
        # Without the position reset the row is one long sequence: later examples attend to earlier ones.
        running = model(input_ids=packed["input_ids"], position_ids=torch.arange(sum(lengths))[None]).logits[0]
        contaminated = [sequence_loss(running[s:s + n], torch.tensor(e["labels"]))
                        for s, n, e in zip(starts, lengths, batch)]
    # A sequence's first token is never predicted from the previous sequence's last one.
    unmasked = pack_batch([{"input_ids": [5, 6, 7], "labels": [5, 6, 7]}, {"input_ids": [8, 9], "labels": [8, 9]}])
    assert unmasked["labels"].tolist() == [[IGNORE_INDEX, 6, 7, IGNORE_INDEX, 9]]
    assert unmasked["position_ids"].tolist() == [[0, 1, 2, 0, 1]]
    torch.testing.assert_close(torch.stack(in_row), torch.stack(alone), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(packed_loss, padded_loss, atol=1e-5, rtol=1e-5)
    assert (torch.stack(contaminated[1:]) - torch.stack(alone[1:])).abs().min() > 1e-4


def test_packed_and_padded_training_end_at_the_same_weights(tiny_model_dir: Path, tmp_path: Path):
    packed = run_train(tiny_model_dir, tmp_path / "packed", train_cfg(packing=True))
    padded = run_train(tiny_model_dir, tmp_path / "padded", train_cfg(packing=False))
    real_tokens = sum(len(e["input_ids"]) for e in examples(tiny_model_dir, len(ROWS)))
    assert packed["tokens"] == padded["tokens"] == real_tokens  # padding is not counted as throughput
    assert packed["tokens_per_second"] > 0 and packed["steps"] == padded["steps"] == 2
    assert packed["losses"] == pytest.approx(padded["losses"], abs=1e-5)
    base, a, b = (load_file(p / "model.safetensors") for p in (tiny_model_dir, tmp_path / "packed", tmp_path / "padded"))
    assert max((a[k] - base[k]).abs().max() for k in base) > 1e-4  # the weights moved
    for key in base:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4)
    assert not (tmp_path / ".packed.checkpoints").exists()


def test_lora_trains_only_adapters_and_merges_into_a_plain_checkpoint(tiny_model_dir: Path, tmp_path: Path):
    cfg = train_cfg(method=TrainMethod.lora, learning_rate=1e-2, lora_rank=4, lora_alpha=8, lora_dropout=0.0)
    stats = run_train(tiny_model_dir, tmp_path / "lora", cfg)
    base_model = load_model(str(tiny_model_dir), "float32")
    targets = {name: m for name, m in base_model.named_modules() if name.split(".")[-1] in cfg.lora_target_modules}
    assert len(targets) == 7 * base_model.config.num_hidden_layers
    assert stats["trainable_parameters"] == sum(4 * (m.in_features + m.out_features) for m in targets.values())
    assert stats["parameters"] == sum(p.numel() for p in base_model.parameters()) + stats["trainable_parameters"]

    adapter = load_file(tmp_path / "lora" / "adapter" / "adapter_model.safetensors")
    assert all(".lora_A." in k or ".lora_B." in k for k in adapter)
    assert sum(t.numel() for t in adapter.values()) == stats["trainable_parameters"]
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "lora")  # plain transformers, no PEFT
    assert type(merged) is type(base_model)
    base, merged = base_model.state_dict(), merged.state_dict()
    assert base.keys() == merged.keys()
    for key in base:
        module = key.removesuffix(".weight")
        if module not in targets:  # embeddings, norms, head: never trained
            assert torch.equal(merged[key], base[key]), key
            continue
        a, b = (adapter[f"base_model.model.{module}.lora_{x}.weight"] for x in "AB")
        assert b.abs().max() > 1e-4  # the adapter learned something
        # merged = frozen base + (alpha / rank) * B @ A: the base itself was not trained
        torch.testing.assert_close(merged[key] - base[key], 2.0 * b @ a, atol=1e-6, rtol=1e-4)


def test_bf16_autocast_trains_fp32_weights_near_fp32_training(tiny_model_dir: Path, tmp_path: Path):
    fp32 = run_train(tiny_model_dir, tmp_path / "fp32", train_cfg())
    bf16 = run_train(tiny_model_dir, tmp_path / "bf16", train_cfg(), DistributedConfig(bf16=True))
    assert (fp32["bf16"], bf16["bf16"]) == (False, True)  # recorded in train_stats.json
    assert bf16["losses"] == pytest.approx(fp32["losses"], abs=0.05)
    a, b = (load_file(tmp_path / name / "model.safetensors") for name in ("fp32", "bf16"))
    assert {t.dtype for t in b.values()} == {torch.float32}  # master weights stay fp32
    assert max((a[k] - b[k]).abs().max() for k in a) > 1e-6  # the matmuls did run in bf16


@pytest.mark.parametrize("dist, gpu_bf16, flags, expected", [
    (DistributedConfig(), None, {"avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}, True),  # AMX CPU
    (DistributedConfig(), None, {"avx512f", "avx512_bf16"}, False),  # bf16 dot products but no AMX: fp32
    (DistributedConfig(strategy=DistributedStrategy.deepspeed, deepspeed_config="zero3.json"), None, {"amx_bf16"},
     False),  # DeepSpeed's bf16 would keep bf16 weights
    (DistributedConfig(), True, set(), True),  # a GPU with bf16
    (DistributedConfig(), False, {"amx_bf16"}, False),  # a GPU without it, on an AMX host
    (DistributedConfig(bf16=False), None, {"amx_bf16"}, False),  # asked for: fp32
    (DistributedConfig(bf16=True), None, set(), True),
])
def test_training_precision_follows_the_hardware_unless_asked(dist, gpu_bf16, flags, expected):
    assert uses_bf16(dist, gpu_bf16, flags) is expected


def test_cpu_flags_agree_with_torch():
    assert ("avx512_bf16" in cpu_flags()) == torch.cpu._is_avx512_bf16_supported()


@pytest.mark.parametrize(
    "build, key",
    [
        (lambda: train_cfg(method=TrainMethod.lora, lora_rank=0), "train.lora_rank"),
        (lambda: train_cfg(method=TrainMethod.lora, lora_target_modules=[]), "train.lora_target_modules"),
        (lambda: train_cfg(save_steps=0), "train.save_steps"),
        (lambda: DistributedConfig(processes_per_node=2), "distributed.processes_per_node"),
        (lambda: DistributedConfig(strategy=DistributedStrategy.deepspeed, deepspeed_config="nope.json"),
         "distributed.deepspeed_config"),
    ],
)
def test_bad_train_and_distributed_values_name_their_key(build, key: str):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build()
