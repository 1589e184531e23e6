"""Grading: equivalent forms, math-verify's known failure modes and what s1x does with each, timeouts, choice
letters, normalised string equality, records graded on the answer part only, and the audit of a cell."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from math_verify import parse, verify

from s1x.evaluate import grading
from s1x.evaluate.grading import Verdict, grade, grade_choice, grade_exact, grade_math, normalise
from s1x.evaluate.budget import Rule
from s1x.evaluate.records import records as _records
from s1x.outcomes import stage_dir
from s1x.report.audit import audit
from tests.conftest import ROOT


@pytest.mark.parametrize("answer, gold", [
    ("Final Answer: $\\frac{1}{2}$", "\\frac12"), ("The answer is $\\boxed{0.5}$", "\\frac{1}{2}"),
    ("Final Answer: 25", "025"), ("Final Answer: $\\boxed{025}$", "25"), ("Final Answer: 3/4", "\\frac{3}{4}"),
    ("So $x = \\boxed{-7}$.", "-7"), ("Final Answer: $0.333333$", "\\frac{1}{3}"),
])
def test_equivalent_forms_are_correct(answer, gold):
    assert grade_math(answer, gold).correct


@pytest.mark.parametrize("answer, gold", [("Final Answer: 24", "25"), ("Final Answer: $\\frac{1}{3}$", "0.5"), ("no answer", "1")])
def test_wrong_answers_are_wrong(answer, gold):
    assert not grade_math(answer, gold).correct


def test_a_verdict_says_what_was_extracted_and_how_it_was_decided():
    assert grade("math", "Final Answer: $\\frac{1}{2}$", "0.5") == Verdict("\\frac{1}{2}", "0.5", True, "math-verify", False)
    assert grade("math", "no answer", "1") == Verdict("", "1", False, "math-verify", False)


# math-verify 0.9.0's known failure modes: each test asserts what raw math-verify does, then s1x's verdict.

def test_several_boxes_grade_the_last_unless_the_gold_is_a_set():
    answer = "The answer is \\boxed{3}, no wait, \\boxed{5}"
    assert set(parse(answer)[0]) == {3, 5}  # raw: every box read together as one set
    assert not verify(parse("$5$"), parse(answer))
    assert grade_math(answer, "5") == Verdict("5", "5", True, "math-verify+last-boxed")
    assert not grade_math(answer, "3").correct
    assert grade_math("\\boxed{3}\\boxed{5}", "35").extracted == "5"  # adjacent boxes are not one number either
    # A gold of several answers keeps math-verify's reading: each answer boxed on its own is the whole answer.
    assert grade_math("\\boxed{3} and \\boxed{5}", "3, 5") == Verdict("3,5", "3, 5", True, "math-verify")


def test_bold_answers_are_read_without_their_stars():
    assert parse("Final Answer: **73**")[-1] == "73**"  # raw: right number, but the extracted text keeps the stars
    assert parse("**3/4**")[0] == 3  # raw: the fraction read as its numerator
    assert grade_math("Final Answer: **73**", "73") == Verdict("73", "73", True, "math-verify+unbold")
    assert grade_math("**3/4**", "\\frac{3}{4}") == Verdict("3/4", "\\frac{3}{4}", True, "math-verify+unbold")
    assert not grade_math("**3/4**", "3").correct


def test_latex_outside_math_mode_is_read_as_math():
    assert parse("Final Answer: \\dfrac{3}{4}") == []  # raw: nothing extracted
    assert parse("The answer is 1 - \\dfrac{1}{e}.")[0] == 1  # raw: a stray 1
    assert parse("Final Answer: \\sqrt{3}") == []
    assert grade_math("Final Answer: \\dfrac{3}{4}", "\\frac{3}{4}") == \
        Verdict("\\frac{3}{4}", "\\frac{3}{4}", True, "math-verify+bare-latex")
    assert grade_math("The answer is 1 - \\dfrac{1}{e}.", "1-\\frac{1}{e}").correct
    assert not grade_math("The answer is 1 - \\dfrac{1}{e}.", "1+\\frac{1}{e}").correct
    assert grade_math("Final Answer: \\sqrt{3}", "\\sqrt{3}").correct
    assert grade_math("x = \\dfrac{3}{4}", "0.75").correct


def test_one_minus_one_over_e_is_not_one_plus_one_over_e():
    minus, plus = "1-\\frac{1}{\\mathrm{e}}", "1+\\frac{1}{\\mathrm{e}}"
    assert parse(f"${minus}$")[0] == parse(f"${plus}$")[0] == 1  # raw: \mathrm{e} cuts both parses short at 1
    assert verify(parse(f"${plus}$"), parse(f"${minus}$"))  # raw: judged equal
    assert not verify(parse("$1+\\frac{1}{e}$"), parse("$1-\\frac{1}{e}$"))  # raw, with a plain e: unequal
    assert grade_math(f"${minus}$", plus) == Verdict("1-\\frac{1}{e}", plus, False, "math-verify+euler-e")
    assert grade_math(f"${minus}$", "1-\\frac{1}{e}").correct
    assert grade_math("$1-\\frac{1}{e}$", minus).correct  # raw: False, the gold read as 1


def test_numbers_that_differ_relatively_are_rejected():
    assert verify(parse("$\\frac{1}{2^{99}}$"), parse("$\\frac{1}{2^{98}}$"))  # raw: equal to 6 decimal places
    assert grade_math("$\\frac{1}{2^{98}}$", "\\frac{1}{2^{99}}") == \
        Verdict("\\frac{1}{2^{98}}", "\\frac{1}{2^{99}}", False, "math-verify+numeric-guard")
    assert grade_math("$\\frac{1}{2006!}$", "\\frac{1}{2004!}").method == "math-verify+numeric-guard"
    assert grade_math("$\\frac{\\sqrt{3}}{2}$", "0.866025") == \
        Verdict("\\frac{\\sqrt{3}}{2}", "0.866025", True, "math-verify")  # a rounded gold still matches


def _sleep(*args, **kwargs):
    time.sleep(5)


def test_timeouts_are_recorded_not_read_as_wrong(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(grading, "TIMEOUT_SECONDS", 1)
    monkeypatch.setattr("math_verify.grader.sympy_expr_eq", _sleep)  # a comparison that never ends
    answer = "Final Answer: $\\frac{10}{2}$"
    assert verify(parse("$5$"), parse(answer), timeout_seconds=1) is False  # raw: a timeout reads as unequal
    assert grade_math(answer, "5") == Verdict("\\frac{10}{2}", "5", False, "math-verify", timed_out=True)
    monkeypatch.setattr("math_verify.parser.extract_target_from_pred", _sleep)  # a parse that never ends
    assert parse("Final Answer: 5", parsing_timeout=1) == []  # raw: a timeout reads as no answer
    assert grade_math("Final Answer: 5", "5") == Verdict("", "5", False, "math-verify", timed_out=True)


def test_math_grading_refuses_to_run_outside_the_main_thread():
    errors = []
    worker = threading.Thread(target=lambda: errors.append(pytest.raises(RuntimeError, grade_math, "5", "5")))
    worker.start()
    worker.join()
    assert "main thread" in str(errors[0].value)


def test_choice_letters_a_to_z_the_most_explicit_last():
    assert grade_choice("\\boxed{D}", "D") == Verdict("D", "D", True, "letter")
    assert grade_choice("A is tempting, but the answer is C", "C").extracted == "C"
    assert grade_choice("Final Answer: (G)", "G").correct  # more than four choices
    assert grade_choice("B, I think.", "B").extracted == "B"  # the pronoun is no choice
    assert grade_choice("The answer is (B); (E) was close", "B").extracted == "B"
    assert grade_choice("no letter here", "A") == Verdict("", "A", False, "letter")


def test_exact_answers_compare_normalised():
    assert normalise("  $\\boxed{**New   York**}$. ") == "new york"
    assert grade_exact("Final Answer: $\\boxed{Paris}$.", "paris") == Verdict("paris", "paris", True, "exact")
    assert grade_exact("I considered Rome.\nThe answer is **Paris**.", "Paris").extracted == "paris"
    assert grade_exact("Paris", "Paris").correct
    assert not grade_exact("Final Answer: Paris, France", "Paris").correct
    assert not grade_exact("", "").correct


class _CharTokenizer:
    """One token per character: decode is the characters."""

    def decode(self, ids: list[int], skip_special_tokens: bool) -> str:
        return "".join(map(chr, ids))


def test_records_grade_the_answer_part_never_the_thinking():
    thinking, answer = "7 is \\boxed{7}\n", "Final Answer: 6"
    state = SimpleNamespace(generated=[ord(c) for c in thinking + answer], thinking_end=len(thinking),
                            answer_begin=len(thinking), thinking_tokens=5, rounds=1, extensions=0, extension_offsets=[],
                            capped=False, hit_limit=False, policy=SimpleNamespace(rule=Rule()))
    silent = SimpleNamespace(**{**vars(state), "generated": [ord(c) for c in thinking], "answer_begin": len(thinking)})
    rows = [{"id": "q1", "question": "?", "answer": "7"}, {"id": "q2", "question": "?", "answer": "7", "kind": "math"}]
    first, second = _records(SimpleNamespace(tokenizer=_CharTokenizer()), rows, ["p", "p"], [state, silent])
    assert (first["answer_text"], first["extracted"], first["gold"], first["correct"]) == (answer, "6", "7", False)
    assert (first["grading_method"], first["grading_timeout"]) == ("math-verify", False)
    assert (second["answer_text"], second["extracted"], second["correct"]) == ("", "", False)


def _record(qid: str, answer: str, gold: str, method: str | None = "math-verify", correct: bool = True) -> dict:
    record = {"id": qid, "sample": 0, "answer_text": answer, "gold": gold, "extracted": answer.split()[-1],
              "correct": correct}
    return record if method is None else {**record, "grading_method": method, "grading_timeout": False}


@pytest.fixture
def cell(tmp_path: Path) -> Path:
    """A finished cell whose evaluation holds math and choice records in two files, and a file of other rows."""
    evaluation, cell_dir = tmp_path / "store" / "eval" / "k1", tmp_path / "run"
    (evaluation / "records").mkdir(parents=True)
    cell_dir.mkdir()
    records = {
        "records/0.jsonl": [_record("half", "Final Answer: $\\frac{1}{2}$", "0.5"),  # math-verify only
                            _record("twelve", "Final Answer: 12", "12"),
                            _record("north", "Final Answer: north", "North", correct=False),  # string equality only
                            _record("wrong", "Final Answer: 13", "12", correct=False),
                            _record("third", "Final Answer: $\\frac{2}{6}$", "1/3")],  # math-verify only
        "records/1.jsonl": [_record("letter", "The answer is (B)", "B", "letter"),
                            _record("old-letter", "(B)", "B", method=None)],  # before methods were recorded
        "extra.jsonl": [{"id": "not-a-record", "question": "?"}],
    }
    for name, rows in records.items():
        (evaluation / name).write_text("".join(json.dumps(row) + "\n" for row in rows))
    (cell_dir / "cell.json").write_text(json.dumps({"status": "done", "stages": {"eval": {"path": str(evaluation)}}}))
    return cell_dir


def test_audit_prints_a_seeded_sample_and_where_the_graders_disagree(cell: Path):
    text = audit(cell, sample=3, seed=1)
    header, table = text.splitlines()[0], text.splitlines()[1:5]
    assert header.startswith("7 graded answers under ") and header.endswith("0 timed out; a sample of 3 (seed 1):")
    assert table[0].split() == ["file", "id", "gold", "extracted", "verdict", "exact", "method", "timeout", "answer"]
    assert [row.split()[:2] for row in table[1:]] == [["records/0.jsonl", "twelve"], ["records/0.jsonl", "third"],
                                                      ["records/0.jsonl", "half"]]
    assert table[2].split()[2:] == ["1/3", "$\\frac{2}{6}$", "right", "wrong", "math-verify",
                                    "Final", "Answer:", "$\\frac{2}{6}$"]
    assert audit(cell, sample=3, seed=1) == text and audit(cell, sample=3, seed=0) != text
    assert "math-verify and normalised string equality judge 3 of 5 math answers differently" in text
    assert "  right by math-verify only: 2: half (records/0.jsonl), third (records/0.jsonl)" in text
    assert "  right by string equality only: 1: north (records/0.jsonl)" in text
    every = audit(cell).splitlines()  # the default sample of 20: every record once
    assert len(every) == 1 + 1 + 7 + 1 + 3
    rows = {row.split()[1]: row.split()[4:7] for row in every[2:9]}
    assert rows["letter"] == ["right", "-", "letter"]  # a choice record: no string-equality verdict
    assert rows["old-letter"] == ["right", "-", "-"]  # recorded before the method was: choice by its gold letter
    assert rows["north"] == ["wrong", "right", "math-verify"]


def test_audit_finds_a_planned_cells_evaluation_in_the_store(tmp_path: Path):
    (tmp_path / "cell.json").write_text(json.dumps({"status": "done", "keys": {"select": "s", "train": None, "eval": "e1"},
                                                    "store_dir": str(tmp_path / "store"), "stages": {}}))
    assert stage_dir(tmp_path, "eval") == (tmp_path / "store").resolve() / "eval" / "e1"
    with pytest.raises(FileNotFoundError, match="names no train output"):
        stage_dir(tmp_path, "train")


def test_cli_audits_a_cell(cell: Path):
    result = subprocess.run([sys.executable, "-m", "s1x.report", "--audit", str(cell), "--sample", "2", "--seed", "0"],
                            cwd=ROOT, capture_output=True, text=True, check=True)
    assert "a sample of 2 (seed 0):" in result.stdout and "judge 3 of 5 math answers differently" in result.stdout
    missing = subprocess.run([sys.executable, "-m", "s1x.report", "--audit", str(cell.parent)], cwd=ROOT,
                             capture_output=True, text=True)
    assert missing.returncode != 0 and "cell.json" in missing.stderr
