"""The report stage: one Markdown table over the cells of a run or sweep directory.

Usage: python -m s1x.report SWEEP_DIR
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from s1x.pipeline import CELL_FILE

REPORT_FILE = "report.md"


def collect_cells(sweep_dir: Path) -> list[dict]:
    cells = []
    for path in sorted(Path(sweep_dir).rglob(CELL_FILE)):
        cell = json.loads(path.read_text())
        cell["dir"] = str(path.parent.relative_to(sweep_dir)) or "."
        cells.append(cell)
    return cells


def _status(cell: dict) -> str:
    if cell["status"] != "failed":
        return cell["status"]
    last_line = cell.get("error", "").strip().splitlines()[-1:] or ["unknown error"]
    return "failed: " + last_line[0][:160].replace("|", "/")


def render_markdown(cells: list[dict]) -> str:
    benchmarks = sorted({name for cell in cells for name in cell.get("metrics", {})})
    curves = sorted({name for cell in cells for name in cell.get("scaling", {})})
    header = ["cell", "overrides", "status"]
    for name in benchmarks:
        header += [f"{name} accuracy (%)", f"{name} 95% CI", f"{name} thinking tokens"]
    for name in curves:
        header += [f"{name} Control (%)", f"{name} Scaling (%/1K tokens)", f"{name} Performance (%)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for cell in cells:
        row = [cell["dir"], " ".join(cell["overrides"]) or "(defaults)", _status(cell)]
        for name in benchmarks:
            m = cell.get("metrics", {}).get(name)
            if m is None:
                row += ["–", "–", "–"]
            else:
                low, high = m["accuracy_ci95"]
                row += [f"{100 * m['accuracy']:.1f}", f"{100 * low:.1f}–{100 * high:.1f}", f"{m['mean_thinking_tokens']:.1f}"]
        for name in curves:
            c = cell.get("scaling", {}).get(name)
            if c is None:
                row += ["–", "–", "–"]
            else:
                slope = "–" if c["scaling"] is None else f"{100_000 * c['scaling']:.2f}"
                row += [f"{100 * c['control']:.1f}", slope, f"{100 * c['performance']:.1f}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def write_report(sweep_dir: Path) -> Path:
    sweep_dir = Path(sweep_dir)
    target = sweep_dir / REPORT_FILE
    target.write_text(f"# s1x report: {sweep_dir}\n\n" + render_markdown(collect_cells(sweep_dir)))
    return target


class ReportAtSweepEnd(Callback):
    """The report stage of a multirun (configured in conf/config.yaml): one table over the sweep.

    Failed cells do not stop a sweep; once the report is written, they make it exit non-zero
    (SystemExit: Hydra turns ordinary exceptions from callbacks into warnings).
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: object) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        path = write_report(sweep_dir)
        logging.getLogger("s1x").info("report   %s\n%s", path, path.read_text())
        failed = [c["dir"] for c in collect_cells(sweep_dir) if c["status"] == "failed"]
        if failed:
            raise SystemExit(f"{len(failed)} cell(s) failed ({', '.join(failed)}); see {path} and their logs")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m s1x.report SWEEP_DIR")
    print(write_report(Path(sys.argv[1])).read_text())
