"""The embedded miniature carries what s1's ablations probe: checks that catch slips, more of them in long traces."""
from __future__ import annotations

import re

from s1x.embedded import CHECK, DOMAINS, generate_benchmark, generate_pool

POOL = generate_pool(2000, seed=0)


def _true_values(question: str) -> tuple[int, list[int]]:
    """The running values recomputed from the question's text alone, not from the generator."""
    items = [int(v) for v in re.findall(r"\([a-h]\) ([+-]?\d+)", question)]
    if question.startswith("Count the "):
        target = int(question.split()[2][:-2])
        counts = [sum(d == target for d in items[: i + 1]) for i in range(len(items))]
        return 0, counts
    if question.startswith("From "):
        start, items = int(question.split()[1][:-1]), [-v for v in items]
    elif question.startswith("Start at "):
        start = int(question.split()[2][:-1])
    else:
        start = 0
    values, value = [], start
    for item in items:
        value += item
        values.append(value)
    return start, values


def _checks(trace: str) -> list[list[str]]:
    """Each check's lines after its opener ("Wait, let me check a to e.")."""
    return [[line for line in part.split("\n")[1:] if line and not line.startswith("So the answer")]
            for part in trace.split(CHECK)[1:]]


def test_every_check_line_states_the_true_running_value():
    checked = [r for r in POOL if r["source"] == "embedded/checked"]
    assert len(checked) > 200
    for row in checked:
        _, values = _true_values(row["question"])
        if row["domain"].startswith("count_digit/"):  # one line: the digit's items found at once, and their number
            values = values[-1:]
        for check in _checks(row["trace"]):
            stated = [int(re.findall(r"-?\d+", line.split(" (not")[0])[-1]) for line in check]
            assert stated == values, row["trace"]
        assert row["trace"].endswith(f"So the answer is {values[-1]}.") and row["answer"] == str(values[-1])


def test_every_trace_and_check_names_the_items_it_runs_over_and_no_line_goes_past_them():
    for row in POOL:
        last = "abcdefgh"[row["steps"] - 1]
        assert row["question"].count("(") == row["steps"] and f"({last})" in row["question"]
        assert row["trace"].startswith(f"Items a to {last}.\n")
        assert row["trace"].count(CHECK) == row["trace"].count(f"{CHECK} a to {last}.\n")
        walked = re.findall(r"^([a-h])(?:,([a-h]))? ", row["trace"], flags=re.M)
        assert max(label for pair in walked for label in pair) == last or row["source"] == "embedded/truncated"


def test_a_check_flags_exactly_the_first_pass_slips():
    caught = 0
    for row in (r for r in POOL if r["source"] == "embedded/checked"):
        first_answer = int(row["trace"].split(CHECK)[0].strip().rsplit(" ", 1)[1].rstrip("."))
        first_check = _checks(row["trace"])[0]
        flags = [l for l in first_check if "(not " in l]
        assert len(flags) == (first_answer != int(row["answer"])), row["trace"]
        caught += bool(flags)
        assert all("(not " not in l for check in _checks(row["trace"])[1:] for l in check)  # later checks agree
    assert caught > 100


def test_first_passes_take_two_items_a_line_and_wrong_traces_end_on_a_slip():
    for row in POOL:
        first = row["trace"].split(CHECK)[0].split("\n")
        pairs = [l for l in first if re.match(r"^[a-h],[a-h] ", l)]
        if row["source"] != "embedded/truncated":
            assert len(pairs) == row["steps"] // 2, row["trace"]
        if row["source"] == "embedded/wrong":
            assert not row["trace_correct"] and row["trace"].rsplit(" ", 1)[1] != f"{row['answer']}."


def test_long_chains_and_longest_traces_carry_the_checks():
    def share(rows):
        return sum(r["source"] == "embedded/checked" for r in rows) / len(rows)

    long, short = [r for r in POOL if r["steps"] >= 7], [r for r in POOL if r["steps"] <= 3]
    assert share(long) > 2.5 * share(short)
    longest = sorted(POOL, key=lambda r: len(r["trace"]), reverse=True)[:256]
    assert share(longest) > 0.9 and share(POOL) < 0.4


def test_pool_is_reproducible_and_benchmark_is_held_out():
    assert generate_pool(50, seed=0) == POOL[:50] and generate_pool(50, seed=1) != POOL[:50]
    assert {r["domain"] for r in POOL} == {f"{kind}/{steps}" for kind in DOMAINS for steps in range(2, 9)}
    bench = {r["question"] for r in generate_benchmark(200, seed=0)}
    assert len(bench) == 200 and len(bench & {r["question"] for r in POOL}) <= 10  # short chains coincide; selection decontaminates
