"""An audit of one cell's grading, for a person to check: a seeded sample of its verdicts side by side with
the answers they judged, and the answers that math-verify and plain normalised string equality judge
differently (where math-verify's reading deserves a look, or string equality is too strict).

Records are found by content, not by file name: every *.jsonl under the cell's evaluation directory whose
lines hold `answer_text` and `gold` (the evaluate stage's per-sample records).
"""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

from s1x.evaluate.grading import grade
from s1x.outcomes import stage_dir

IDS_SHOWN = 5  # ids listed for each direction of disagreement
KINDS = {"letter": "choice", "exact": "exact"}  # a record's grading_method -> its kind; anything else is math


def read_records(directory: Path) -> list[dict]:
    """Every graded record under directory, in file order, each with `file` (its path relative to directory)."""
    records = []
    for path in sorted(directory.rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line) if line.strip() else {}
            if "answer_text" in record and "gold" in record:
                records.append({**record, "file": str(path.relative_to(directory))})
    return records


def kind(record: dict) -> str:
    """The kind a record was graded as; for records from before s1x recorded the method, choice where the gold
    is one capital letter, else math."""
    if "grading_method" not in record:
        return "choice" if re.fullmatch("[A-Z]", record["gold"]) else "math"
    return KINDS.get(record["grading_method"], "math")


def _short(value: object, width: int) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(rows: list[list[str]], caps: list[int]) -> list[str]:
    """Columns as wide as their widest cell, up to its cap."""
    cells = [[_short(cell, cap) for cell, cap in zip(row, caps)] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(caps))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells]


def _row(record: dict, exact: bool | None) -> list[str]:
    verdict = "right" if record.get("correct") else "wrong"
    by_strings = "-" if exact is None else "right" if exact else "wrong"
    return [record["file"], record["id"], record["gold"], record.get("extracted") or "(none)", verdict, by_strings,
            record.get("grading_method", "-"), "yes" if record.get("grading_timeout") else "",
            record["answer_text"] or "(empty)"]


def audit(cell_dir: Path, sample: int = 20, seed: int = 0) -> str:
    """The audit's text: the sample (id, gold, extracted, stored verdict, what string equality says, method,
    timeout, the answer text shortened), then the disagreements between math-verify and string equality."""
    directory = stage_dir(cell_dir, "eval")
    records = read_records(directory)
    if not records:
        raise FileNotFoundError(f"no graded records (answer_text, gold) in any *.jsonl under {directory}")
    # index -> (math-verify's verdict, string equality's), for the math records
    judged = {i: (grade("math", r["answer_text"], r["gold"]).correct, grade("exact", r["answer_text"], r["gold"]).correct)
              for i, r in enumerate(records) if kind(r) == "math"}
    chosen = random.Random(seed).sample(range(len(records)), min(sample, len(records)))
    rows = [["file", "id", "gold", "extracted", "verdict", "exact", "method", "timeout", "answer"]]
    rows += [_row(records[i], judged[i][1] if i in judged else None) for i in chosen]
    timed_out = sum(bool(r.get("grading_timeout")) for r in records)
    lines = [f"{len(records)} graded answers under {directory}, {timed_out} timed out; "
             f"a sample of {len(chosen)} (seed {seed}):", *_table(rows, [24, 40, 20, 20, 7, 5, 40, 7, 60]), ""]
    only_math = [records[i] for i, (by_math, by_strings) in judged.items() if by_math and not by_strings]
    only_strings = [records[i] for i, (by_math, by_strings) in judged.items() if by_strings and not by_math]
    lines.append(f"math-verify and normalised string equality judge {len(only_math) + len(only_strings)} "
                 f"of {len(judged)} math answers differently")
    for label, group in (("right by math-verify only", only_math), ("right by string equality only", only_strings)):
        if group:
            shown = ", ".join(f"{r['id']} ({r['file']})" for r in group[:IDS_SHOWN])
            lines.append(f"  {label}: {len(group)}: {shown}" + (", ..." if len(group) > IDS_SHOWN else ""))
    return "\n".join(lines)
