"""The s1 paper in miniature, measured: what `make run` and the headline sweep show on the embedded default.

Runs, each on an empty store and cache in a temporary directory (so nothing is reused from earlier runs):
1. what `make run` runs (`python -m s1x -m train=none,full`), timed: the base model's and the trained
   model's budget-forcing curves (Figure 4 / Table 3 in miniature);
2. the headline command verbatim, `python -m s1x -m data=random,diverse,s1k extend=wait,hmm`, timed
   (Table 2: which examples; Table 4: which extension string), then once more, which must do no stage work.
It prints the curves and the tables, and each target's measured value:

    python benchmarks/embedded_paper.py      # targets: make run <= 10 min; trained accuracy at its largest budget
                                             # >= 20 points over its smallest cap, intervals apart; Scaling > 0;
                                             # trained beats base at full budget, intervals apart; headline:
                                             # 6 cells done, 6 different evaluations, <= 20 min; rerun reuses all
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
MAKE_RUN = ["-m", "train=none,full"]
HEADLINE = ["-m", "data=random,diverse,s1k", "extend=wait,hmm"]


def run(args: list[str], home: Path, name: str) -> tuple[float, list[dict], str]:
    """Seconds, the report's rows and the output of `python -m s1x ARGS` on the store and cache in `home`."""
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
        return seconds, list(csv.DictReader(handle)), output


def curve(row: dict, benchmark: str = "embedded") -> list[tuple[str, float, float, float, float]]:
    """(point, thinking tokens, accuracy, low, high) per budget=scale point, by thinking tokens."""
    points = []
    for column in row:
        match = re.fullmatch(rf"{benchmark}@(\+?\d+)\.accuracy", column)
        if match and row[column]:
            name = f"{benchmark}@{match[1]}"
            points.append((match[1], float(row[f"{name}.mean_thinking_tokens"]), float(row[column]),
                           float(row[f"{name}.accuracy_ci95_low"]), float(row[f"{name}.accuracy_ci95_high"])))
    return sorted(points, key=lambda p: p[1])


def show_curve(label: str, points: list) -> None:
    print(f"  {label}")
    for point, tokens, accuracy, low, high in points:
        kind = f"cap {point}" if not point.startswith("+") else f"{point[1:]} extension(s)" if point != "+0" else "own ending"
        print(f"    {kind:16s} {tokens:6.1f} thinking tokens  {100 * accuracy:5.1f} %  ({100 * low:.1f}-{100 * high:.1f})")


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="s1x-embedded-paper-") as tmp:
        make_seconds, rows, _ = run(MAKE_RUN, Path(tmp) / "make-run", "make-run")
        by_train = {row["train"]: row for row in rows}
        base, trained = curve(by_train["none"]), curve(by_train["full"])
        print("Figure 4 in miniature: accuracy against thinking tokens (embedded benchmark, greedy)")
        show_curve("base SmolLM2-135M-Instruct (train=none)", base)
        show_curve("trained on the embedded selection (train=full)", trained)
        print("\nTable 3 in miniature: the curve's Control / Scaling / Performance")
        for name, row in (("base", by_train["none"]), ("trained", by_train["full"])):
            print(f"  {name:8s} Control {100 * float(row['embedded.control']):.0f} %  "
                  f"Scaling {100_000 * float(row['embedded.scaling']):.2f} %/1K tokens  "
                  f"Performance {100 * float(row['embedded.performance']):.1f} %")

        headline_seconds, cells, _ = run(HEADLINE, Path(tmp) / "headline", "headline")
        rerun_seconds, _, rerun_output = run(HEADLINE, Path(tmp) / "headline", "headline-again")
        print("\nTable 2 / Table 4 in miniature: the headline sweep (accuracy at the curve's largest budget)")
        for row in cells:
            last = curve(row)[-1]
            print(f"  data={row['data']:8s} extend={row['extend']:5s} {row['status']:5s} "
                  f"{100 * last[2]:5.1f} % at {last[1]:.0f} thinking tokens; "
                  f"Scaling {100_000 * float(row['embedded.scaling']):.2f} %/1K tokens")

        rise = trained[-1][2] - trained[0][2]
        headline = Path(tmp) / "headline" / "sweeps" / "headline"
        evaluations = {json.loads((headline / row["cell"] / "cell.json").read_text())["stages"]["eval"]["key"] for row in cells}
        stage_work = re.findall(r"(select|train|eval)\s+done", rerun_output)
        print("\ntarget                                             measured                   result")
        print(f"make run <= 600 s                                  {make_seconds:7.0f} s ({make_seconds / 600:.2f}x)    "
              f"{verdict(make_seconds <= 600)}")
        print(f"trained: largest budget - smallest cap >= 20 pts   {100 * rise:+7.1f} points              {verdict(rise >= 0.2)}")
        print(f"  intervals apart (low at largest > high at cap)   {100 * trained[-1][3]:.1f} vs {100 * trained[0][4]:.1f}"
              f"               {verdict(trained[-1][3] > trained[0][4])}")
        scaling = float(by_train["full"]["embedded.scaling"])
        print(f"trained Scaling > 0                                {100_000 * scaling:7.2f} %/1K tokens        {verdict(scaling > 0)}")
        print(f"trained beats base at full budget, intervals apart {100 * trained[-1][2]:.1f} (low {100 * trained[-1][3]:.1f}) vs "
              f"{100 * base[-1][2]:.1f} (high {100 * base[-1][4]:.1f})  {verdict(trained[-1][3] > base[-1][4])}")
        done = sum(row["status"] == "done" for row in cells)
        print(f"headline: 6 cells done                             {done} done                     {verdict(done == 6)}")
        print(f"headline: 6 different evaluations (store keys)     {len(evaluations)} different         "
              f"        {verdict(len(evaluations) == 6)}")
        print(f"headline <= 1200 s                                 {headline_seconds:7.0f} s ({headline_seconds / 1200:.2f}x)    "
              f"{verdict(headline_seconds <= 1200)}")
        print(f"headline again: no stage work                      {len(stage_work)} stages done, {rerun_seconds:.0f} s"
              f"        {verdict(not stage_work)}")


if __name__ == "__main__":
    main()
