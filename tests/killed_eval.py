"""An evaluation that SIGKILLs itself once `kill_after` samples are journaled, as a kill -9 of s1x does: the kill
of the resume tests. vLLM's engine process goes with it (the kernel kills it when its parent dies); its pids are
written to PROGRESS_DIR/engine.pids first, so that the test can see them gone. Start it in a session of its own.

    python -m tests.killed_eval ENGINE MODEL_DIR PROGRESS_DIR KILL_AFTER [engine-dies]
ENGINE is hf (4 sampled samples of every row) or vllm (one greedy sample, forced in one generation). With
`engine-dies`, only vLLM's engine process is SIGKILLed, and the evaluation goes on to meet its death.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from s1x.chat import S1Format
from s1x.config import BudgetMode, EvalConfig, ExtendConfig, ModelConfig
from s1x.evaluate.modes import budget_config
from s1x.evaluate.generation import evaluate_rows
from s1x.evaluate.journal import Journal
from s1x.evaluate.policy import forcing_policy
from s1x.lifetime import end_with_the_parent
from s1x.models import load_tokenizer

QUESTIONS = ["Compute 2 + 3.", "Solve for x: 3x + 1 = 7.", "What is 5 mod 3?", "Find the greatest common divisor of 12 and 18."]
ROWS = [{"id": f"{k}-{i}", "question": f"{q} (case {k})", "answer": "5"} for k in range(4) for i, q in enumerate(QUESTIONS)]
SAMPLES = {"hf": 4, "vllm": 1}
TEMPERATURE = {"hf": 1.0, "vllm": 0.0}
ENGINE_PIDS = "engine.pids"


def run(fmt: S1Format, engine, name: str, journal: Journal | None) -> list[dict]:
    eval_cfg = EvalConfig(max_thinking_tokens=40, max_answer_tokens=6, temperature=TEMPERATURE[name],
                          samples=SAMPLES[name])
    budget = budget_config(BudgetMode.ignore, times=1)
    policy = forcing_policy(fmt, eval_cfg, budget, ExtendConfig(name="wait", string="Wait"))
    return evaluate_rows(fmt, engine, policy, ROWS, "resume", budget, SAMPLES[name], seed=7, journal=journal)


def engine_for(name: str, model_dir: str):
    tokenizer = load_tokenizer(model_dir)
    fmt = S1Format(tokenizer, ModelConfig(name="tiny", path=model_dir))
    if name == "hf":
        from s1x.evaluate.engines.hf import HFEngine
        from s1x.models import load_model

        return fmt, HFEngine(load_model(model_dir, "float32"), tokenizer, batch_size=len(ROWS), temperature=1.0)
    from s1x.evaluate.engines.vllm import VLLMEngine

    return fmt, VLLMEngine(model_dir, "float32", temperature=0.0, gpu_memory_utilization=0.1, max_model_len=512,
                           block_size=32)


if __name__ == "__mp_main__":  # vLLM's engine process, spawned: it ends with this one, as with s1x's entry point
    end_with_the_parent()
if __name__ == "__main__":
    name, model_dir, progress, kill_after = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    engine_dies = sys.argv[5:] == ["engine-dies"]
    journal = Journal(progress)
    append = journal.append

    def append_then_die(*args) -> None:
        append(*args)
        if journal.path.exists() and len(journal.path.read_text().splitlines()) >= kill_after:
            engines = [int(child) for child in Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
                       if "EngineCore" in Path(f"/proc/{child}/cmdline").read_text()]
            if not engine_dies:
                (progress / ENGINE_PIDS).write_text(" ".join(map(str, engines)))
                os.kill(os.getpid(), signal.SIGKILL)
            for pid in engines:
                os.kill(pid, signal.SIGKILL)

    journal.append = append_then_die
    fmt, engine = engine_for(name, model_dir)
    run(fmt, engine, name, journal)
    sys.exit("the evaluation finished before it was killed")
