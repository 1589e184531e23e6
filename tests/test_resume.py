"""A killed evaluation resumes from its journal: kill -9 once about half its samples are done (or kill vLLM's
engine process), rerun, and the records equal an uninterrupted run's, with only the missing samples generated,
on HF and on vLLM. The store keeps the progress directory of a failed attempt and drops it with the entry."""
from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from s1x.evaluate.budget import Phase
from s1x.evaluate.journal import JOURNAL_FILE, Journal
from s1x.store import Store
from tests.conftest import run_module
from tests.killed_eval import ENGINE_PIDS, ROWS, engine_for, run


def killed(engine: str, model_dir: Path, progress: Path, kill_after: int) -> Journal:
    """The evaluation in its own process group, SIGKILLed once `kill_after` samples are journaled; its journal."""
    child = run_module("tests.killed_eval", [engine, str(model_dir), str(progress), str(kill_after)], new_session=True,
                       timeout=600)
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    return Journal(progress)


def _alive(pid: int, within_s: float = 10.0) -> bool:
    """Whether the process still runs after `within_s` (a zombie has ended: its parent has not reaped it yet)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z"):
                return False
        except FileNotFoundError:
            return False
        time.sleep(0.1)
    return True


def counting_force(engine, monkeypatch: pytest.MonkeyPatch) -> list:
    """The states the engine is asked to force from now on."""
    forced: list = []
    force = engine.force

    def counted(states, seed=0, on_round=lambda done: None):
        forced.extend(states)
        return force(states, seed, on_round)

    monkeypatch.setattr(engine, "force", counted)
    return forced


def test_a_killed_hf_evaluation_resumes_with_the_same_records(tiny_model_dir: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch):
    """Sampled, 4 samples of 16 rows, killed once the first two samples are journaled: samples 3 and 4 are drawn
    with their own seeds in the batches an uninterrupted run draws them in, so every record is the same."""
    fmt, engine = engine_for("hf", str(tiny_model_dir))
    expected = run(fmt, engine, "hf", None)
    journal = killed("hf", tiny_model_dir, tmp_path / "progress", kill_after=2 * len(ROWS))
    assert len(journal.found) == 2 * len(ROWS)
    forced = counting_force(engine, monkeypatch)
    assert run(fmt, engine, "hf", journal) == expected
    assert len(forced) == 2 * len(ROWS)  # only samples 3 and 4
    assert len((tmp_path / "progress" / JOURNAL_FILE).read_text().splitlines()) == 4 * len(ROWS)


def test_a_torn_last_line_and_a_changed_prompt_are_generated_again(tiny_model_dir: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch):
    fmt, engine = engine_for("hf", str(tiny_model_dir))
    progress = tmp_path / "progress"
    run(fmt, engine, "hf", Journal(progress))
    lines = (progress / JOURNAL_FILE).read_text().splitlines()
    first = json.loads(lines[0])
    first["prompt"] += " (another question)"
    (progress / JOURNAL_FILE).write_text("\n".join([json.dumps(first), *lines[1:-1], lines[-1][:20]]) + "\n")
    forced = counting_force(engine, monkeypatch)
    run(fmt, engine, "hf", Journal(progress))
    assert len(forced) == 2 and all(state.phase is Phase.done for state in forced)


def test_the_store_keeps_a_failed_attempts_progress_and_drops_it_with_the_entry(tmp_path: Path):
    store, determining = Store(tmp_path), {"model": "m"}
    progress = store.progress("eval", determining)

    def dies(out: Path) -> None:
        Journal(progress).append("call", 0, [])
        (progress / JOURNAL_FILE).write_text("finished samples\n")
        raise RuntimeError("preempted")

    with pytest.raises(RuntimeError):
        store.get_or_compute("eval", determining, dies)
    assert (progress / JOURNAL_FILE).read_text() == "finished samples\n"
    seen = []
    path, reused = store.get_or_compute("eval", determining, lambda out: seen.append((progress / JOURNAL_FILE).read_text()))
    assert seen == ["finished samples\n"] and not reused and path.is_dir() and not progress.exists()


def test_the_stage_resumes_every_sample_its_journal_holds(tiny_model_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    """The evaluate stage journals into its progress directory; a rerun there, the curve included, forces nothing
    and writes the same metrics (its branches' answers are generated again from the journaled main run)."""
    import s1x.evaluate.stage
    from s1x.config import BudgetMode, EvalConfig, ExtendConfig, ModelConfig
    from s1x.evaluate.modes import budget_config

    fmt, engine = engine_for("hf", str(tiny_model_dir))
    monkeypatch.setattr(engine, "close", lambda: None)
    monkeypatch.setattr(s1x.evaluate.stage, "load_engine", lambda *args: (fmt, engine))
    eval_cfg = EvalConfig(limit=4, max_thinking_tokens=12, max_answer_tokens=4)
    budget = budget_config(BudgetMode.scale, caps=[4, 8], extensions=[0, 1])
    model_cfg, progress = ModelConfig(name="tiny", path=str(tiny_model_dir)), tmp_path / "progress"
    first = s1x.evaluate.stage.evaluate(eval_cfg, budget, ExtendConfig(name="wait", string="Wait"), model_cfg,
                                        str(tiny_model_dir), _dir(tmp_path / "a"), progress)
    forced = counting_force(engine, monkeypatch)
    with caplog.at_level("INFO", logger="s1x"):
        again = s1x.evaluate.stage.evaluate(eval_cfg, budget, ExtendConfig(name="wait", string="Wait"), model_cfg,
                                            str(tiny_model_dir), _dir(tmp_path / "b"), progress)
    assert forced == [] and again["results"] == first["results"]
    assert "resuming: 4 finished samples" in caplog.text


def _dir(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.mark.slow  # over 10 s on 2 cores: processes of its own, killed and run again
def test_a_killed_vllm_evaluation_resumes_with_the_same_records(engines, eager_stopper_dir: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch):
    """Greedy, forced in one generation: its own process is SIGKILLed once half the rows are journaled (they finish
    one by one), and vLLM's engine process ends with it; the rerun forces only the other half and writes the
    uninterrupted run's records."""
    fmt, _, vllm, _ = engines
    expected = run(fmt, vllm, "vllm", None)
    journal = killed("vllm", eager_stopper_dir, tmp_path / "progress", kill_after=len(ROWS) // 2)
    assert len(ROWS) // 2 <= len(journal.found) < len(ROWS)
    engine_pids = [int(pid) for pid in (tmp_path / "progress" / ENGINE_PIDS).read_text().split()]
    assert engine_pids and not [pid for pid in engine_pids if _alive(pid)]  # no orphaned engine holds the memory
    forced = counting_force(vllm, monkeypatch)
    assert run(fmt, vllm, "vllm", journal) == expected
    assert len(forced) == len(ROWS) - len(journal.found)


@pytest.mark.slow  # over 10 s on 2 cores: processes of its own, killed and run again
def test_when_the_engine_process_dies_the_evaluation_fails_and_resumes(engines, eager_stopper_dir: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch):
    """vLLM's engine process SIGKILLed once one sample is journaled: the evaluation raises EngineDeadError instead
    of waiting forever, and the rerun forces only the samples its journal lacks."""
    fmt, _, vllm, _ = engines
    child = run_module("tests.killed_eval", ["vllm", str(eager_stopper_dir), str(tmp_path / "progress"), "1", "engine-dies"],
                       timeout=600)
    assert child.returncode == 1 and "EngineDeadError" in child.stderr, child.stderr[-3000:]
    journal = Journal(tmp_path / "progress")
    assert 1 <= len(journal.found) < len(ROWS)
    expected = run(fmt, vllm, "vllm", None)
    forced = counting_force(vllm, monkeypatch)
    assert run(fmt, vllm, "vllm", journal) == expected and len(forced) == len(ROWS) - len(journal.found)
