"""The s1 paper in miniature, measured on the embedded default (greedy, the whole embedded benchmark), paired.

Runs on an empty store and cache in a temporary directory (nothing reused from earlier runs), as a new user would:
1. what `make run` runs (`python -m s1x -m train=none,full`), timed: the base and trained curves (Table 3);
2. the headline command verbatim, `python -m s1x -m data=random,diverse,s1k extend=wait,hmm`, timed, then once
   more, which must do no stage work;
3. the rest of Table 4 (extend=alternatively,none) and of Table 2 (data=longest, then data=full, which trains on
   the whole pool and takes longest) on the same store.
Every comparison is paired on the same problems with the report's own test (s1x.report.paired: exact McNemar and
a paired bootstrap on the records). It prints the tables and each target's measured value, and writes them to
benchmarks/results/embedded_paper.json, both after every phase, so a stopped run keeps what it measured:

    python benchmarks/embedded_paper.py

`--home DIR` runs the phases on the store in DIR (a stopped run's, or one copied from another run) and keeps it:
the accuracies and paired tests are the same (greedy), but stages found in the store are not timed, so the time
targets are then not judged.
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s1x.evaluate.results import Point, Series  # noqa: E402
from s1x.report.paired import PairedComparison, compare_cells  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "embedded_paper.json"
HEADLINE = ["-m", "data=random,diverse,s1k", "extend=wait,hmm"]
# In the order they run; data=full (the whole pool, 2,000 rows) trains longest, so it comes last.
PHASES = [("make_run", ["-m", "train=none,full"]), ("headline", HEADLINE), ("headline_again", HEADLINE),
          ("table4", ["-m", "extend=alternatively,none"]), ("table2_longest", ["-m", "data=random,longest"]),
          ("table2_full", ["-m", "data=random,full"])]  # random: reused, so each row names its data
LARGEST, OWN_ENDING, SMALLEST_CAP = Point(extensions=2), Point(extensions=0), Point(cap=16)


def run(args: list[str], home: Path, name: str) -> tuple[float, dict[str, dict], str]:
    """Seconds, the report's rows by cell label and the output of `python -m s1x ARGS` on the store in `home`."""
    sweep = home / "sweeps" / name
    command = [sys.executable, "-m", "s1x", *args, f"store_dir={home}/store", f"cache_dir={home}/cache",
               f"hydra.sweep.dir={sweep}"]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    output = result.stdout + result.stderr
    if result.returncode != 0:
        sys.exit(f"`{' '.join(command)}` exited {result.returncode}:\n{output[-3000:]}")
    with open(sweep / "report.csv") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["dir"] = sweep / row["cell"]
    # A row names only its sweep's axes: the others are the defaults (train=full, data=random, extend=wait).
    return seconds, {f"{row.get('train', 'full')}/{row.get('data', 'random')}/{row.get('extend', 'wait')}": row
                     for row in rows}, output


def curve(row: dict) -> list[dict]:
    """The curve's points by thinking tokens: label, thinking tokens, accuracy."""
    points = []
    for column in row:
        match = re.fullmatch(r"embedded@(\+?\d+)\.accuracy", column)
        if match and row[column]:
            points.append({"point": match[1], "thinking_tokens": float(row[f"embedded@{match[1]}.mean_thinking_tokens"]),
                           "accuracy": float(row[column])})
    return sorted(points, key=lambda p: p["thinking_tokens"])


def paired(cell_a: Path, point_a: Point, cell_b: Path, point_b: Point) -> PairedComparison:
    return compare_cells(cell_a, cell_b, Series("embedded", point_a), Series("embedded", point_b))


def described(comparison: PairedComparison) -> dict:
    low, high = comparison.difference_ci95
    return {"accuracy_a": comparison.accuracy_a, "accuracy_b": comparison.accuracy_b, "difference": comparison.difference,
            "ci95": [low, high], "p": comparison.p_value, "discordant": [comparison.a_only, comparison.b_only], "n": comparison.n}


def line(label: str, comparison: PairedComparison) -> str:
    low, high = comparison.difference_ci95
    return (f"  {label:34s} {100 * comparison.accuracy_a:5.1f} vs {100 * comparison.accuracy_b:5.1f} %  "
            f"{100 * comparison.difference:+5.1f} points ({100 * low:+.1f} to {100 * high:+.1f}), "
            f"{comparison.a_only} vs {comparison.b_only} discordant, paired p = {comparison.p_value:.3g}")


def metrics(row: dict) -> dict:
    return {name: float(row[f"embedded.{name}"]) for name in ("control", "scaling", "performance") if row.get(f"embedded.{name}")}


def comparisons(cells: dict[str, dict]) -> dict[str, tuple]:
    """Every comparison whose two cells have run so far: (cell A, point A, cell B, point B)."""
    wanted = {
        "extrapolation: +2 vs +0 (random, wait)": ("full/random/wait", LARGEST, "full/random/wait", OWN_ENDING),
        "caps: +0 vs cap 16 (random, wait)": ("full/random/wait", OWN_ENDING, "full/random/wait", SMALLEST_CAP),
        "trained vs base at +2": ("full/random/wait", LARGEST, "none/random/wait", LARGEST),
        "headline: s1k vs random at +2 (hmm)": ("full/s1k/hmm", LARGEST, "full/random/hmm", LARGEST),
    }
    for data in ("diverse", "longest", "s1k", "full"):
        wanted[f"table 2: {data} vs random at +2"] = (f"full/{data}/wait", LARGEST, "full/random/wait", LARGEST)
    for extend in ("hmm", "alternatively", "none"):
        wanted[f"table 4: wait vs {extend} at +2"] = ("full/random/wait", LARGEST, f"full/random/{extend}", LARGEST)
    return {label: (cells[a]["dir"], pa, cells[b]["dir"], pb) for label, (a, pa, b, pb) in wanted.items()
            if a in cells and b in cells}


def targets(results: dict) -> dict[str, tuple]:
    """Each target measured so far: (measured value, met)."""
    seconds, p, m = results["seconds"], results["paired"], results["metrics"]
    found: dict[str, tuple] = {}
    if results["reused_store"]:
        seconds = {}  # a reused store's phases skip the stages it holds: their times are no user's
    if "make_run" in seconds:
        found["make run <= 600 s"] = (seconds["make_run"], seconds["make_run"] <= 600)
    if "headline" in seconds:
        found["headline <= 1500 s"] = (seconds["headline"], seconds["headline"] <= 1500)
    if "stage_work_on_rerun" in results:
        found["headline again: no stage work"] = (results["stage_work_on_rerun"], results["stage_work_on_rerun"] == 0)
    if (e := p.get("extrapolation: +2 vs +0 (random, wait)")):
        found["extrapolation: +2 - +0 >= 8 points, p < 0.05"] = (e["difference"], e["difference"] >= 0.08 and e["p"] < 0.05)
    if (c := p.get("caps: +0 vs cap 16 (random, wait)")):
        found["caps: cap 16 -> +0 >= 20 points"] = (c["difference"], c["difference"] >= 0.2)
    if (w := p.get("table 4: wait vs none at +2")):
        found["string: wait beats none at +2, p < 0.05"] = (w["difference"], w["difference"] > 0 and w["p"] < 0.05)
    if (s := p.get("table 2: s1k vs random at +2")):
        found["selection: s1k >= random at +2"] = (s["difference"], s["difference"] >= 0)
        scaling = tuple(round(100_000 * m[f"full/{data}/wait"]["scaling"], 2) for data in ("s1k", "random"))  # %/1K tokens
        found["selection: s1k Scaling > random Scaling"] = (scaling, scaling[0] > scaling[1])
    return found


def measure(cells: dict[str, dict], results: dict) -> None:
    """Curves, metrics, paired comparisons and targets of the cells run so far, into `results`, printed."""
    print("\nEvery cell so far (accuracy at +2, Scaling)", flush=True)
    for label, row in sorted(cells.items()):
        results["curves"][label], results["metrics"][label] = curve(row), metrics(row)
        m = metrics(row)
        print(f"  {label:26s} " + "  ".join(f"{p['point']}: {100 * p['accuracy']:.1f} % @ {p['thinking_tokens']:.0f}"
                                            for p in curve(row))
              + f"\n  {'':26s} Control {100 * m.get('control', 0):.0f} %  Scaling {100_000 * m.get('scaling', 0):.2f} %/1K tokens"
              f"  Performance {100 * m.get('performance', 0):.1f} %")
    print("Paired comparisons (A vs B on the same 200 problems)")
    for label, (a, point_a, b, point_b) in comparisons(cells).items():
        comparison = paired(a, point_a, b, point_b)
        results["paired"][label] = described(comparison)
        print(line(label, comparison))
    results["targets"] = {name: {"measured": value, "met": met} for name, (value, met) in targets(results).items()}
    print("target                                             measured                 result")
    for name, (value, met) in targets(results).items():
        shown = (f"{100 * value:+.1f} points" if isinstance(value, float) and abs(value) <= 1
                 else f"{value[0]} vs {value[1]} %/1K tokens" if isinstance(value, tuple) else str(value))
        print(f"{name:50s} {shown:24s} {'ok' if met else 'MISSED'}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, help="run on this directory's store and keep it (times not judged)")
    reused = parser.parse_args().home
    results: dict = {"seconds": {}, "curves": {}, "metrics": {}, "paired": {}, "targets": {},
                     "reused_store": reused is not None}
    cells: dict[str, dict] = {}
    # Removed only once every phase is measured: a run that stops keeps its store, its sweeps and their records.
    home = reused or Path(tempfile.mkdtemp(prefix="s1x-embedded-paper-"))
    print(f"store and sweeps: {home}", flush=True)
    for phase, args in PHASES:
        results["seconds"][phase], ran, output = run(args, home, phase)
        print(f"{phase}: {results['seconds'][phase]:.0f} s", flush=True)
        if phase == "headline_again":
            results["stage_work_on_rerun"] = len(re.findall(r"(select|train|eval)\s+done", output))
        else:
            cells |= ran
        measure(cells, results)
        save(results | {"done": phase})
    if not reused:
        shutil.rmtree(home)
    print(f"\nwritten: {RESULTS.relative_to(ROOT)}")


def save(results: dict) -> None:
    """Written after each phase too (marked partial), so a long run that is stopped still leaves its numbers."""
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
