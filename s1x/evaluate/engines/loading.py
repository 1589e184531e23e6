"""The configured engine for a checkpoint, with its tokenizer's format."""
from __future__ import annotations

from s1x.chat import S1Format
from s1x.config import EngineName, EvalConfig, ModelConfig
from s1x.evaluate.engines import Engine
from s1x.evaluate.engines.hf import HFEngine
from s1x.models import inference_placement, load_model, load_tokenizer


def load_engine(model_cfg: ModelConfig, model_path: str, eval_cfg: EvalConfig) -> tuple[S1Format, Engine]:
    """The tokenizer's format and the configured engine, holding the model until it is closed (use it with `with`)."""
    tokenizer = load_tokenizer(model_path)
    fmt = S1Format(tokenizer, model_cfg)
    dtype = model_cfg.dtype.value
    if eval_cfg.engine is EngineName.vllm:
        from s1x.evaluate.engines.vllm import VLLMEngine

        parallel = eval_cfg.tensor_parallel_size or inference_placement(model_path, dtype).tensor_parallel_size
        return fmt, VLLMEngine(model_path, dtype, eval_cfg.temperature, tensor_parallel_size=parallel,
                               gpu_memory_utilization=eval_cfg.gpu_memory_utilization,
                               max_model_len=eval_cfg.max_model_len, forcing=eval_cfg.forcing)
    model = load_model(model_path, dtype, inference_placement(model_path, dtype))  # the GPUs where there are some
    return fmt, HFEngine(model, tokenizer, eval_cfg.batch_size, eval_cfg.temperature)
