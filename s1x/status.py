"""python -m s1x.status SWEEP_DIR [--wait]: a SLURM sweep's jobs and its report so far.

The launcher returns once a sweep is submitted; this is how to follow it. One line per job of the
sweep's graph (graph.json): stage, key, job id, and what the store and SLURM say of it (pending and
why, running, done, failed with the error's last line, cancelled because an input failed, missing),
then the report table as it stands, rendered here (nothing is written: the report job writes the
files, and `python -m s1x.report SWEEP_DIR` writes them again).

Exit status: 0 when every cell is done, 1 when a cell failed or went missing, 2 while jobs are still
queued or running. --wait polls until none is.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from s1x.report.cells import collect_cells
from s1x.report.render import render_markdown
from s1x.report.table import build_table
from s1x.graph import GRAPH_FILE
from s1x.slurm import ended, job_states
from s1x.store import Store


def _store_dirs(sweep_dir: Path) -> dict[int, str]:
    """Cell index -> the store its record names (a sweep may set store_dir per cell)."""
    stores = {}
    for record in sweep_dir.glob("*/cell.json"):
        cell = json.loads(record.read_text())
        if "store_dir" in cell and record.parent.name.isdigit():
            stores[int(record.parent.name)] = cell["store_dir"]
    return stores


def job_lines(sweep_dir: Path) -> tuple[list[str], bool]:
    """One line per job of the sweep's graph, and whether any is still queued or running."""
    graph = json.loads((sweep_dir / GRAPH_FILE).read_text())
    stores, nodes = _store_dirs(sweep_dir), graph["nodes"]
    records = {}
    for node in nodes:
        store = Store(stores.get(node["cells"][0], "."))
        done = store.is_done(node["stage"], node["key"])
        records[node["stage"], node["key"]] = (done, store.job_record(node["stage"], node["key"]) or {})
    jobs = [n["job_id"] for n in nodes if n["job_id"]] + [graph["report_job"]] * bool(graph["report_job"])
    states, active, lines = job_states(jobs), False, []
    for node in nodes:
        done, record = records[node["stage"], node["key"]]
        state = states.get(node["job_id"] or "", "")
        if done:
            what = "done" + (" (in the store before this sweep)" if node["state"] == "stored" else "")
        elif record.get("state") == "failed":
            what = "failed: " + (record.get("error", "").strip().splitlines() or ["?"])[-1]
        elif state:
            what, active = state, active or not ended(state)
        else:
            what = "missing (no job SLURM knows of, nothing in the store)"
        where = f"  log {record['log']}" if record.get("log") and not done else ""
        lines.append(f"{node['stage']:7s}{node['key']}  job {node['job_id'] or '-':>8s}  {what}{where}")
    if graph["report_job"]:
        state = states.get(graph["report_job"], "ended")
        active = active or not ended(state)
        lines.append(f"{'report':7s}{'':16s}  job {graph['report_job']:>8s}  {state}")
    return lines, active


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m s1x.status", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--wait", action="store_true", help="poll until no job is queued or running")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between polls with --wait")
    args = parser.parse_args(argv)
    if not (args.sweep_dir / GRAPH_FILE).exists():
        sys.exit(f"{args.sweep_dir}: no {GRAPH_FILE}; not a sweep submitted with hydra/launcher=slurm")
    lines, active = job_lines(args.sweep_dir)
    while args.wait and active:
        time.sleep(args.interval)
        lines, active = job_lines(args.sweep_dir)
    cells = collect_cells(args.sweep_dir)
    print("\n".join(lines) + "\n\n" + render_markdown(build_table(cells)))
    counts = {s: sum(c["status"] == s for c in cells) for s in dict.fromkeys(c["status"] for c in cells)}
    print(f"{len(cells)} cells: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    if active or any(c["status"] in ("pending", "running") for c in cells):
        return 2
    return 0 if all(c["status"] == "done" for c in cells) else 1


if __name__ == "__main__":
    sys.exit(main())
