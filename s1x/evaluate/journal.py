"""The evaluation's journal: every finished sample's generation, appended durably, so a killed or preempted
evaluation resumes where it stopped instead of starting again.

The journal lives in the eval key's progress directory (`Store.progress`), which outlives a failed attempt and
goes once the entry is in place; a rerun with the same key reads it back. An entry is one sample of one forcing
call: the call's label and seed, the sample's position and its prompt, and what the state machine ended with.
Entries whose prompt differs from the rerun's are not used. Each batch of finished samples is flushed and
fsynced before generation goes on, so at most the samples in flight are lost. Records are derived from the
states again, so a resumed evaluation writes the records an uninterrupted one writes.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Iterable

from s1x.evaluate.budget import Phase, Probe, SampleState

log = logging.getLogger(__name__)

JOURNAL_FILE = "samples.jsonl"
_SKIPPED = {"prompt_ids", "policy", "phase"}  # the rerun's own, or `done` for every journaled sample


def _to_json(state: SampleState) -> dict:
    return {f.name: getattr(state, f.name) for f in dataclasses.fields(state) if f.name not in _SKIPPED} | {
        "probes": [dataclasses.asdict(probe) for probe in state.probes]}


def _restore(state: SampleState, saved: dict) -> None:
    for name, value in saved.items():
        setattr(state, name, value)
    state.probes = [Probe(p["at"], p["ids"], None if p["answer"] is None else tuple(p["answer"])) for p in saved["probes"]]
    state.phase = Phase.done


class Journal:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / JOURNAL_FILE
        self.found: dict[tuple[str, int, int], dict] = {}
        if self.path.exists():
            for number, line in enumerate(self.path.read_text().splitlines(), 1):
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:  # the line being written when the process died
                    log.warning("%s:%d: an unfinished entry, generated again", self.path, number)
                    continue
                self.found[(entry["call"], entry["seed"], entry["index"])] = entry

    def restore(self, call: str, seed: int, prompts: list[str], states: list[SampleState]) -> int:
        """Put back the samples of this call found with the same prompt; how many were."""
        restored = 0
        for index, (prompt, state) in enumerate(zip(prompts, states)):
            entry = self.found.get((call, seed, index))
            if entry is not None and entry["prompt"] == prompt:
                _restore(state, entry["state"])
                restored += 1
        return restored

    def append(self, call: str, seed: int, finished: Iterable[tuple[int, str, SampleState]]) -> None:
        """Write finished samples (index, prompt, state) and make them durable before going on."""
        lines = [json.dumps({"call": call, "seed": seed, "index": index, "prompt": prompt, "state": _to_json(state)})
                 for index, prompt, state in finished]
        if not lines:
            return
        with open(self.path, "a") as handle:
            handle.write("\n".join(lines) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
