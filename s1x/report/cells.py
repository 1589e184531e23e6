"""A sweep directory's cells: each cell.json, and a `missing` cell for a directory Hydra started that never wrote
one or a planned cell it never started (cells.planned.json, written by hydra/sweeper=checked).

A SLURM sweep's cell.json is a record of the cell's stage keys and their jobs until its report job
settles it: its outcome is read from the store and what SLURM says of the jobs (one squeue call for
the whole sweep), so a failed stage shows as `failed` with its error, a queued one as `pending`, and
one whose job vanished as `missing`.
"""
from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from s1x.outcomes import CELL_FILE, cell_jobs, cell_outcome
from s1x.slurm import job_states

PLANNED_FILE = "cells.planned.json"
# Ctrl-C's one line: a cell's finished stages are in the store, an evaluation's finished samples in its journal.
STOPPED = "s1x: stopped (Ctrl-C); the same command again reuses everything that finished"


def _natural_order(relative: Path) -> tuple[str, ...]:
    return tuple(part.zfill(9) if part.isdigit() else part for part in relative.parts)


def write_planned(sweep_dir: Path, planned: list[list[str]]) -> None:
    """The sweep's cells as planned (their overrides, in job order), so that cells a stopped sweep never started
    are reported as missing."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / PLANNED_FILE).write_text(json.dumps(planned, indent=2))


def collect_cells(sweep_dir: Path) -> list[dict]:
    """Each cell's cell.json, plus a `missing` cell for each directory Hydra started that never wrote one and for
    each planned cell it never started."""
    sweep_dir = Path(sweep_dir)
    dirs = {p.parent for p in sweep_dir.rglob(CELL_FILE)}
    dirs |= {p.parent.parent for p in sweep_dir.rglob(".hydra/overrides.yaml")}
    planned = json.loads((sweep_dir / PLANNED_FILE).read_text()) if (sweep_dir / PLANNED_FILE).exists() else []
    dirs |= {sweep_dir / str(i) for i in range(len(planned))}
    cells = []
    for cell_dir in sorted(dirs, key=lambda d: _natural_order(d.relative_to(sweep_dir))):
        if (cell_dir / CELL_FILE).exists():
            cell = json.loads((cell_dir / CELL_FILE).read_text())
        elif (cell_dir / ".hydra" / "overrides.yaml").exists():
            cell = {"overrides": list(OmegaConf.load(cell_dir / ".hydra" / "overrides.yaml")), "status": "missing"}
        else:  # planned, never started
            cell = {"overrides": planned[int(cell_dir.name)], "status": "missing"}
        cell["dir"] = str(cell_dir.relative_to(sweep_dir))
        cells.append(cell)
    unsettled = [i for i, cell in enumerate(cells) if _unsettled(cell)]
    if unsettled:
        queue = job_states(job for i in unsettled for job in cell_jobs(cells[i]))
        for i in unsettled:
            cells[i] = {**cell_outcome(cells[i], queue), "dir": cells[i]["dir"]}
    return cells


def _unsettled(cell: dict) -> bool:
    """A SLURM sweep's cell whose outcome is still to be read from the store and its jobs."""
    return "keys" in cell and cell["status"] not in ("done", "failed")


def _override_values(overrides: list[str]) -> dict[str, str]:
    return {key: value for key, _, value in (o.partition("=") for o in overrides)}


def swept_axes(cells: list[dict]) -> list[str]:
    """The override keys whose values differ between cells (absent counts as a value), in first-seen order."""
    given = [_override_values(cell["overrides"]) for cell in cells]
    keys = list(dict.fromkeys(key for values in given for key in values))
    return [key for key in keys if len({values.get(key) for values in given}) > 1]
