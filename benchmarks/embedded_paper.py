"""The s1 paper in miniature, measured on the embedded default (greedy, the whole embedded benchmark), paired.

Runs on an empty store and cache in a temporary directory (nothing reused from earlier runs), as a new user would:
1. what `make run` runs (`python -m s1x -m train=none,full`), timed: the base and trained curves (Table 3);
2. the headline command verbatim, `python -m s1x -m data=random,diverse,s1k extend=wait,hmm`, timed, then once
   more, which must do no stage work;
3. the rest of Table 2 (data=longest,full) and of Table 4 (extend=alternatively,none) on the same store.
Every comparison is paired on the same problems with the report's own test (s1x.report.paired: exact McNemar and
a paired bootstrap on the records). It prints the tables and each target's measured value, and writes them to
benchmarks/results/embedded_paper.json:

    python benchmarks/embedded_paper.py
"""
from __future__ import annotations

import csv
import json
import re
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
MAKE_RUN = ["-m", "train=none,full"]
HEADLINE = ["-m", "data=random,diverse,s1k", "extend=wait,hmm"]
TABLE2_REST = ["-m", "data=longest,full"]
TABLE4_REST = ["-m", "extend=alternatively,none"]
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


def main() -> None:
    results: dict = {"seconds": {}, "curves": {}, "metrics": {}, "paired": {}, "targets": {}}
    with tempfile.TemporaryDirectory(prefix="s1x-embedded-paper-") as tmp:
        home = Path(tmp)
        results["seconds"]["make_run"], cells, _ = run(MAKE_RUN, home, "make-run")
        save(results | {"partial": "make run", "curves": {k: curve(row) for k, row in cells.items()}})
        results["seconds"]["headline"], headline, _ = run(HEADLINE, home, "headline")
        results["seconds"]["headline_again"], _, again = run(HEADLINE, home, "headline-again")
        results["stage_work_on_rerun"] = len(re.findall(r"(select|train|eval)\s+done", again))
        save(results | {"partial": "headline", "curves": {k: curve(row) for k, row in (cells | headline).items()}})
        _, table2, _ = run(TABLE2_REST, home, "table2")
        _, table4, _ = run(TABLE4_REST, home, "table4")
        cells |= headline | table2 | table4

        print("Table 3 in miniature: the curve (embedded benchmark, greedy, 200 problems)")
        for label in ("none/random/wait", "full/random/wait"):
            row = cells[label]
            results["curves"][label], results["metrics"][label] = curve(row), metrics(row)
            print(f"  train={label.split('/')[0]}: " + "  ".join(
                f"{p['point']}: {100 * p['accuracy']:.1f} % @ {p['thinking_tokens']:.0f}" for p in curve(row)))
            print(f"    Control {100 * metrics(row)['control']:.0f} %  Scaling {100_000 * metrics(row)['scaling']:.2f} %/1K tokens"
                  f"  Performance {100 * metrics(row)['performance']:.1f} %")
        trained = cells["full/random/wait"]["dir"]
        comparisons = {
            "extrapolation: +2 vs +0 (random, wait)": (trained, LARGEST, trained, OWN_ENDING),
            "caps: +0 vs cap 16 (random, wait)": (trained, OWN_ENDING, trained, SMALLEST_CAP),
            "trained vs base at +2": (trained, LARGEST, cells["none/random/wait"]["dir"], LARGEST),
        }
        for data in ("diverse", "longest", "s1k", "full"):
            comparisons[f"table 2: {data} vs random at +2"] = (cells[f"full/{data}/wait"]["dir"], LARGEST, trained, LARGEST)
        for extend in ("hmm", "alternatively", "none"):
            comparisons[f"table 4: wait vs {extend} at +2"] = (trained, LARGEST, cells[f"full/random/{extend}"]["dir"], LARGEST)
        comparisons["headline: s1k vs random at +2 (hmm)"] = (cells["full/s1k/hmm"]["dir"], LARGEST,
                                                             cells["full/random/hmm"]["dir"], LARGEST)
        print("\nPaired comparisons (A vs B on the same 200 problems)")
        for label, (a, point_a, b, point_b) in comparisons.items():
            comparison = paired(a, point_a, b, point_b)
            results["paired"][label] = described(comparison)
            print(line(label, comparison))
        print("\nTable 2 / Table 4 in miniature: every cell (accuracy at +2, Scaling)")
        for label, row in sorted(cells.items()):
            results["curves"][label], results["metrics"][label] = curve(row), metrics(row)
            print(f"  {label:26s} {100 * curve(row)[-1]['accuracy']:5.1f} % at {curve(row)[-1]['thinking_tokens']:.0f} "
                  f"thinking tokens; Scaling {100_000 * metrics(row).get('scaling', 0):.2f} %/1K tokens")

    p = results["paired"]
    s1k, random_ = results["metrics"]["full/s1k/wait"], results["metrics"]["full/random/wait"]
    targets = {
        "make run <= 600 s": (results["seconds"]["make_run"], results["seconds"]["make_run"] <= 600),
        "headline <= 1500 s": (results["seconds"]["headline"], results["seconds"]["headline"] <= 1500),
        "headline again: no stage work": (results["stage_work_on_rerun"], results["stage_work_on_rerun"] == 0),
        "extrapolation: +2 - +0 >= 8 points, p < 0.05": (
            p["extrapolation: +2 vs +0 (random, wait)"]["difference"],
            p["extrapolation: +2 vs +0 (random, wait)"]["difference"] >= 0.08 and p["extrapolation: +2 vs +0 (random, wait)"]["p"] < 0.05),
        "string: wait beats none at +2, p < 0.05": (
            p["table 4: wait vs none at +2"]["difference"],
            p["table 4: wait vs none at +2"]["difference"] > 0 and p["table 4: wait vs none at +2"]["p"] < 0.05),
        "selection: s1k >= random at +2": (p["table 2: s1k vs random at +2"]["difference"], p["table 2: s1k vs random at +2"]["difference"] >= 0),
        "selection: s1k Scaling > random Scaling": ((s1k["scaling"], random_["scaling"]), s1k["scaling"] > random_["scaling"]),
        "caps: cap 16 -> +0 >= 20 points": (p["caps: +0 vs cap 16 (random, wait)"]["difference"],
                                            p["caps: +0 vs cap 16 (random, wait)"]["difference"] >= 0.2),
    }
    results["targets"] = {name: {"measured": value, "met": met} for name, (value, met) in targets.items()}
    print("\ntarget                                             measured                 result")
    for name, (value, met) in targets.items():
        shown = f"{100 * value:+.1f} points" if isinstance(value, float) and abs(value) <= 1 else str(value)
        print(f"{name:50s} {shown:24s} {'ok' if met else 'MISSED'}")
    save(results)
    print(f"\nwritten: {RESULTS.relative_to(ROOT)}")


def save(results: dict) -> None:
    """Written after each phase too (marked partial), so a long run that is stopped still leaves its numbers."""
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
