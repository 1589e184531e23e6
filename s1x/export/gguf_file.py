"""A trained checkpoint as one GGUF file, for llama.cpp and Ollama.

Written with the `gguf` package (llama.cpp's own Python writer, maintained with it): its tensor name map,
metadata keys and Q8_0 quantizer; nothing of the file layout is written by hand. What the package leaves to
its caller is here: the model's hyperparameters as llama.cpp's keys, the byte-level BPE vocabulary, and the
row order llama.cpp's rotary embedding expects in Llama's query and key projections.
"""
from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import gguf
import numpy as np
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from s1x.config import ConfigError

ARCHITECTURES = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2}
# The pre-tokenizer llama.cpp must split text with, from the checkpoint's tokenizer.json: a plain byte-level
# pre-tokenizer splits with GPT-2's pattern; Qwen2's own split pattern is named "qwen2".
QWEN2_SPLIT_START = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|"


class GgufType(Enum):
    f16 = "f16"  # every matrix in float16 (norms stay float32, as llama.cpp keeps them)
    q8_0 = "q8_0"  # every matrix in blocks of 32 int8 values with one scale: half of f16, near-lossless

    @property
    def file_type(self) -> gguf.LlamaFileType:
        return gguf.LlamaFileType.MOSTLY_F16 if self is GgufType.f16 else gguf.LlamaFileType.MOSTLY_Q8_0


def _pre_tokenizer(checkpoint: Path) -> str:
    described = json.loads((checkpoint / "tokenizer.json").read_text())["pre_tokenizer"] or {}
    steps = described.get("pretokenizers", [described])
    kinds = [step.get("type") for step in steps]
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"
    split = next((step for step in steps if step.get("type") == "Split"), None)
    if split and split.get("pattern", {}).get("Regex", "").startswith(QWEN2_SPLIT_START):
        return "qwen2"
    raise ConfigError(f"{checkpoint}: tokenizer pre-tokenizer {kinds} has no llama.cpp equivalent s1x knows "
                      "(byte-level GPT-2 or Qwen2)")


def _add_vocabulary(writer: gguf.GGUFWriter, checkpoint: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = json.loads((checkpoint / "tokenizer.json").read_text())["model"]
    if model.get("type") != "BPE":
        raise ConfigError(f"{checkpoint}: only byte-level BPE tokenizers export, not {model.get('type')}")
    by_id = {index: token for token, index in tokenizer.get_vocab().items()}
    special = set(tokenizer.all_special_ids)
    added = {token.content for token in tokenizer.added_tokens_decoder.values()}
    tokens = [by_id.get(i, f"[PAD{i}]") for i in range(len(by_id))]
    kinds = [gguf.TokenType.CONTROL if i in special else gguf.TokenType.USER_DEFINED if tokens[i] in added
             else gguf.TokenType.NORMAL for i in range(len(tokens))]
    merges = [" ".join(pair) if isinstance(pair, list) else pair for pair in model["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_pre_tokenizer(checkpoint))
    writer.add_token_list(tokens)
    writer.add_token_types(kinds)
    writer.add_token_merges(merges)
    for add, token_id in ((writer.add_bos_token_id, tokenizer.bos_token_id), (writer.add_eos_token_id, tokenizer.eos_token_id),
                          (writer.add_pad_token_id, tokenizer.pad_token_id), (writer.add_unk_token_id, tokenizer.unk_token_id)):
        if token_id is not None:
            add(token_id)
    writer.add_add_bos_token(False)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)


def _add_hyperparameters(writer: gguf.GGUFWriter, config, kind: GgufType, name: str) -> None:
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    rope = getattr(config, "rope_parameters", None) or {}
    writer.add_name(name)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(kind.file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def rotary_rows(weight: np.ndarray, heads: int) -> np.ndarray:
    """Llama's query/key rows from Hugging Face's rotary layout (each head's first half, then its second half)
    to llama.cpp's (the two halves interleaved pair by pair); transformers undoes this when it loads a GGUF."""
    rows = weight.shape[0]
    return weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def _stored(data: np.ndarray, kind: GgufType) -> tuple[np.ndarray, gguf.GGMLQuantizationType]:
    """A tensor as the file keeps it: vectors in float32, matrices in the export's type."""
    if data.ndim == 1:
        return data.astype(np.float32), gguf.GGMLQuantizationType.F32
    if kind is GgufType.q8_0 and data.shape[-1] % gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q8_0][0] == 0:
        return gguf.quants.quantize(data.astype(np.float32), gguf.GGMLQuantizationType.Q8_0), gguf.GGMLQuantizationType.Q8_0
    return data.astype(np.float16), gguf.GGMLQuantizationType.F16


def write_gguf(checkpoint: Path, out: Path, kind: GgufType = GgufType.f16) -> Path:
    """Write the Hugging Face checkpoint at `checkpoint` (a Llama or Qwen2 model) as the GGUF file `out`."""
    config = AutoConfig.from_pretrained(checkpoint)
    if config.model_type not in ARCHITECTURES:
        raise ConfigError(f"{checkpoint}: model_type {config.model_type!r} does not export; known: {sorted(ARCHITECTURES)}")
    architecture = ARCHITECTURES[config.model_type]
    names = gguf.TensorNameMap(architecture, config.num_hidden_layers)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(out), gguf.MODEL_ARCH_NAMES[architecture])
    _add_hyperparameters(writer, config, kind, Path(checkpoint).name)
    _add_vocabulary(writer, Path(checkpoint))
    tied = getattr(config, "tie_word_embeddings", False)
    for hf_name, tensor in model.state_dict().items():
        if tied and hf_name == "lm_head.weight":
            continue  # llama.cpp reuses token_embd for the output when the file has no output.weight
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ConfigError(f"{checkpoint}: no GGUF name for tensor {hf_name}")
        data = tensor.numpy()
        if architecture is gguf.MODEL_ARCH.LLAMA and name.endswith(("attn_q.weight", "attn_k.weight")):
            data = rotary_rows(data, config.num_attention_heads if "attn_q" in name else config.num_key_value_heads)
        stored, dtype = _stored(data, kind)
        writer.add_tensor(name, stored, raw_dtype=dtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
