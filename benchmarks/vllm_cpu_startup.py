"""vLLM on a CPU: start-up and the whole embedded evaluation, with vLLM's defaults against the settings s1x picks.

Each run is a fresh process (start-up is per process) that evaluates the embedded default exactly as a cell does
(`s1x.evaluate.stage.evaluate`: SmolLM2-135M, 200 problems, budget=curve, greedy), timing `LLM(...)` and the
rest, and keeping every generated token id. Variants differ only in what reaches vLLM: `enforce_eager` (on a CPU
vLLM otherwise traces the model with torch.compile / dynamo and runs a warm-up pass before serving) and
VLLM_CPU_NUM_OF_RESERVED_CPU (by default vLLM keeps one core away from the model for its scheduler: half of
a 2-core machine). Variants take turns, round by round; every run's token ids must equal the first's. The
first round also prints vLLM's start-up phases, read from its log.

    python benchmarks/vllm_cpu_startup.py              # 4 variants x 2 rounds, ~35 min on 2 cores
    python benchmarks/vllm_cpu_startup.py --rounds 3 --variants defaults s1x
    python benchmarks/vllm_cpu_startup.py --rounds 1 --variants s1x "s1x, blocks of 128" --model .s1x/store/train/KEY
Target: the s1x variant's whole evaluation at most 0.6x vLLM's defaults', with identical token ids.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESERVED = "VLLM_CPU_NUM_OF_RESERVED_CPU"
# name -> (LLM arguments over the engine's own, environment); {} and no variable: what VLLMEngine picks itself.
VARIANTS = {
    "defaults": ({"enforce_eager": False}, {RESERVED: "1"}),  # vLLM's own choices: compiled, one core reserved
    "eager": ({"enforce_eager": True}, {RESERVED: "1"}),
    "compiled, all cores": ({"enforce_eager": False}, {RESERVED: "0"}),
    "s1x": ({}, {}),
    "s1x, blocks of 128": ({"block_size": 128}, {}),  # the prefix cache's unit: vLLM's own on CPUs; s1x takes 32
}
# vLLM's log lines that open each start-up phase (second resolution), in order.
PHASES = [
    ("engine process up", "Initializing a V1 LLM engine"),
    ("worker process up", "Starting to load model"),
    ("weights loaded", "Loading weights took"),
    ("compiled + warm-up run", "Warming up done"),
    ("KV cache sized", "GiB for KV cache"),
    ("KV cache allocated", "init engine (profile, create kv cache, warmup model) took"),
]


def child(llm_args: dict, ids_file: str, model: str) -> None:
    """One evaluation of the embedded default; prints RESULT {seconds} and writes every generated id list."""
    from hydra import compose, initialize_config_dir

    import s1x.evaluate.engines.vllm as engine_module
    import s1x.evaluate.stage as stage
    from s1x.schemas import register
    from s1x.models import resolve_model_path
    from s1x.validate import validated

    register()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = validated(compose("config", []))
    seconds, ids, real_llm, real_records = {}, [], engine_module.LLM, stage._records

    def timed_llm(**kwargs):
        start = time.perf_counter()
        llm = real_llm(**{**kwargs, **llm_args})
        seconds["startup"] = time.perf_counter() - start
        return llm

    def keeping_ids(fmt, rows, prompts, states, *args, **kwargs):
        ids.append([list(state.generated) for state in states])
        return real_records(fmt, rows, prompts, states, *args, **kwargs)

    engine_module.LLM, stage._records = timed_llm, keeping_ids
    path = model or resolve_model_path(cfg.model, ROOT / cfg.cache_dir)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        stage.evaluate(cfg.eval, cfg.budget, cfg.extend, cfg.model, path, Path(out))
    seconds["evaluation"] = time.perf_counter() - start
    Path(ids_file).write_text(json.dumps(ids))
    print("RESULT " + json.dumps(seconds), flush=True)


def phases(log: str) -> str:
    """Seconds from the process start to each start-up phase's log line."""
    stamps = {}
    for label, marker in PHASES:
        line = next((line for line in log.splitlines() if marker in line), None)
        found = line and re.search(r"\d\d-\d\d (\d\d):(\d\d):(\d\d)", line)
        if found:
            stamps[label] = int(found[1]) * 3600 + int(found[2]) * 60 + int(found[3])
    first = re.search(r"\d\d-\d\d (\d\d):(\d\d):(\d\d)", log)
    origin = int(first[1]) * 3600 + int(first[2]) * 60 + int(first[3]) if first else 0
    return ", ".join(f"{label} +{stamp - origin}s" for label, stamp in stamps.items())


def run(name: str, ids_file: Path, model: str) -> tuple[dict, str]:
    llm_args, env = VARIANTS[name]
    base = {k: v for k, v in os.environ.items() if k != RESERVED}
    result = subprocess.run([sys.executable, __file__, "--child", json.dumps(llm_args), str(ids_file), model],
                            capture_output=True, text=True, env={**base, **env}, cwd=ROOT)
    log = result.stdout + result.stderr
    line = next((line for line in log.splitlines() if line.startswith("RESULT ")), None)
    if result.returncode != 0 or line is None:
        sys.exit(f"{name}: exited {result.returncode}\n{log[-3000:]}")
    return json.loads(line[len("RESULT "):]), log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--model", help="a checkpoint to evaluate instead of the base model (a trained cell's thinks longer)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child[0]), args.child[1], args.child[2])
        return
    times: dict[str, list[dict]] = {name: [] for name in args.variants}
    reference = None
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(args.rounds):
            order = args.variants[round_ % len(args.variants):] + args.variants[:round_ % len(args.variants)]
            for name in order:
                ids_file = Path(scratch) / "ids.json"
                seconds, log = run(name, ids_file, args.model or "")
                ids = json.loads(ids_file.read_text())
                reference = reference or ids
                same = sum(a == b for points, ref in zip(ids, reference) for a, b in zip(points, ref))
                total = sum(len(points) for points in reference)
                times[name].append(seconds)
                print(f"round {round_ + 1} {name:>20}: start-up {seconds['startup']:6.1f} s, evaluation "
                      f"{seconds['evaluation']:6.1f} s; {same}/{total} generations identical to the first run's"
                      + (f"\n    {phases(log)}" if round_ == 0 else ""), flush=True)
                if same != total:
                    sys.exit(f"{name}: greedy outputs differ")
    base = args.variants[0]
    print(f"medians over {args.rounds} rounds; ratios are per round against '{base}' of the same round")
    for name, runs in times.items():
        ratio = statistics.median(r["evaluation"] / b["evaluation"] for r, b in zip(runs, times[base]))
        print(f"{name:>20}: start-up {statistics.median(r['startup'] for r in runs):6.1f} s, generation "
              f"{statistics.median(r['evaluation'] - r['startup'] for r in runs):6.1f} s, whole evaluation "
              f"{statistics.median(r['evaluation'] for r in runs):6.1f} s = {ratio:.2f}x {base}")


if __name__ == "__main__":
    main()
