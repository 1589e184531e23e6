"""An evaluation that SIGKILLs its process group (itself and vLLM's engine process, as SLURM kills a job's) once
`kill_after` samples are journaled: the kill -9 of the resume tests. Start it in a session of its own.

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
from s1x.models import load_tokenizer

QUESTIONS = ["Compute 2 + 3.", "Solve for x: 3x + 1 = 7.", "What is 5 mod 3?", "Find the greatest common divisor of 12 and 18."]
ROWS = [{"id": f"{k}-{i}", "question": f"{q} (case {k})", "answer": "5"} for k in range(4) for i, q in enumerate(QUESTIONS)]
SAMPLES = {"hf": 4, "vllm": 1}
TEMPERATURE = {"hf": 1.0, "vllm": 0.0}


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


if __name__ == "__main__":
    name, model_dir, progress, kill_after = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    engine_dies = sys.argv[5:] == ["engine-dies"]
    journal = Journal(progress)
    append = journal.append

    def append_then_die(*args) -> None:
        append(*args)
        if journal.path.exists() and len(journal.path.read_text().splitlines()) >= kill_after:
            if not engine_dies:
                os.killpg(os.getpgrp(), signal.SIGKILL)
            for child in Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split():
                if "EngineCore" in Path(f"/proc/{child}/cmdline").read_text():
                    os.kill(int(child), signal.SIGKILL)

    journal.append = append_then_die
    fmt, engine = engine_for(name, model_dir)
    run(fmt, engine, name, journal)
    sys.exit("the evaluation finished before it was killed")
