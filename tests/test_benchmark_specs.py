"""Benchmarks a user brings as config: their own schemas, clear errors before anything runs, keys by content."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from s1x.config import ConfigError
from s1x.schemas import register
from s1x.evaluate.benchmarks import builtin_names, builtin_spec, gold_answer, load_benchmark
from s1x.keys import planned_keys
from s1x.validate import validated
from tests.conftest import ROOT

DATA = ROOT.parent / "shared" / "data"
register()

# A schema none of the built-ins uses: the question under `prompt`, a worked solution whose last line carries the
# answer after a marker, ids under `uid`.
WORKED = [
    {"uid": "w1", "prompt": "What is 2 + 3?", "worked_solution": "Add them.\nANSWER: 5"},
    {"uid": "w2", "prompt": "What is 7 - 4?", "worked_solution": "Subtract.\nANSWER: 3"},
    {"uid": "w3", "prompt": "What is 3 * 3?", "worked_solution": "ANSWER: 8 is wrong\nMultiply.\nANSWER: 9"},
]
WORKED_SPEC = "{file: %s, question: prompt, answer: worked_solution, answer_pattern: 'ANSWER:\\s*(.+)$', id: uid}"
# Multiple choice with its own field names: the options as a list, the key as a letter.
CHOICES = [
    {"stem": "Which is a prime?", "options": ["4", "6", "7", "9"], "key": "C"},
    {"stem": "Which is even?", "options": ["3", "8", "5", "1"], "key": "B"},
]
CHOICE_SPEC = "{file: %s, question: stem, answer: key, choices: [options], kind: choice}"


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _config(overrides: list[str]):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return validated(compose("config", overrides=overrides))


def _own(tmp_path: Path, worked: Path, choices: Path) -> list[str]:
    return [f"+eval.benchmark_specs={{mybench: {WORKED_SPEC % worked}}}", f"+eval.benchmark_specs={{mychoice: {CHOICE_SPEC % choices}}}",
            "eval.benchmarks=[mybench,mychoice]", f"store_dir={tmp_path}/store"]


def test_builtins_are_descriptions_including_aime25_and_olympiadbench():
    assert builtin_names() == ["aime24", "aime25", "embedded", "gpqa_diamond", "math500", "mmlu_stem", "olympiadbench"]
    for name in builtin_names():
        builtin_spec(name).check(f"conf/benchmark/{name}.yaml")  # one source each; choices where graded by letter
    assert builtin_spec("aime25").hub_id == "math-ai/aime25" and builtin_spec("olympiadbench").subset == "OE_TO_maths_en_COMP"
    rows = load_benchmark("olympiadbench", builtin_spec("olympiadbench", str(DATA / "pool" / "olympiadbench.jsonl"))).rows
    assert len(rows) == 675 and rows[0]["id"] == "olympiadbench-1606" and rows[0]["answer"] == "2"
    assert rows[1]["answer"] == "\\frac{1}{2 n+2}"  # the list of one "$...$" answer, unwrapped


def test_a_gold_answer_inside_a_worked_solution_is_extracted_by_boxed_or_pattern():
    spec = builtin_spec("math500", str(DATA / "math500" / "test.jsonl"))
    from_answer = load_benchmark("math500", spec).rows
    from dataclasses import replace

    from_solution = load_benchmark("math500", replace(spec, answer="solution", answer_pattern="boxed")).rows
    same = sum(a["answer"] == b["answer"] for a, b in zip(from_answer, from_solution))
    assert same >= 480, same  # MATH-500's answer field is its solution's last \boxed{}, bar spacing
    assert gold_answer("so \\boxed{\\frac{1}{2}} and then \\boxed{x^{2}}", "boxed") == "x^{2}"
    assert gold_answer("no box", "boxed") is None
    assert gold_answer("Work.\n#### 72", r"####\s*(.+)$") == "72" and gold_answer(["$3$", "$4$"], None) == "$3$, $4$"


def test_own_benchmarks_load_through_eval_benchmarks(tmp_path: Path):
    worked, choices = _write(tmp_path / "worked.jsonl", WORKED), _write(tmp_path / "choices.jsonl", CHOICES)
    from s1x.evaluate.benchmarks import benchmark

    cfg = _config(_own(tmp_path, worked, choices))
    math_rows = benchmark("mybench", cfg.eval).rows
    assert [(r["id"], r["question"], r["answer"], r["kind"]) for r in math_rows] == [
        ("mybench-w1", "What is 2 + 3?", "5", "math"), ("mybench-w2", "What is 7 - 4?", "3", "math"),
        ("mybench-w3", "What is 3 * 3?", "9", "math")]  # the last marker line, not the first
    choice_rows = benchmark("mychoice", cfg.eval).rows
    for row, source in zip(choice_rows, CHOICES):
        correct = source["options"]["ABCD".index(source["key"])]
        assert f"{row['answer']}) {correct}\n" in row["question"] and row["kind"] == "choice"


def test_own_benchmarks_evaluate_on_the_tiny_model(tiny_model_dir: Path, tmp_path: Path):
    from s1x.evaluate.stage import evaluate

    worked, choices = _write(tmp_path / "worked.jsonl", WORKED), _write(tmp_path / "choices.jsonl", CHOICES)
    cfg = _config([*_own(tmp_path, worked, choices), "model=tiny", f"model.path={tiny_model_dir}", "eval.engine=hf",
                   "eval.max_thinking_tokens=8", "eval.max_answer_tokens=4", "budget=none", "extend=none"])
    out = tmp_path / "eval"
    out.mkdir()
    metrics = evaluate(cfg.eval, cfg.budget, cfg.extend, cfg.model, str(tiny_model_dir), out)
    records = [json.loads(line) for path in out.rglob("*.jsonl") for line in open(path)]
    assert sorted(r["id"] for r in records) == ["mybench-w1", "mybench-w2", "mybench-w3", "mychoice-0", "mychoice-1"]
    assert {r["gold"] for r in records if r["id"].startswith("mybench")} == {"5", "3", "9"}
    sources = metrics["provenance"]["benchmarks"]
    assert sources["mybench"]["file"] == str(worked) and len(sources["mybench"]["sha256"]) == 64


@pytest.mark.parametrize("rows, spec, message", [
    ([], WORKED_SPEC, "no rows"),
    (WORKED, WORKED_SPEC.replace("question: prompt", "question: problem"),
     "no field 'problem' (its question); the rows have: prompt, uid, worked_solution"),
    (WORKED, WORKED_SPEC.replace("ANSWER", "RESULT"), "gives no gold answer by answer_pattern 'RESULT:\\\\s*(.+)$' in 3 of 3 rows, "
                                                      "e.g. mybench-w1, mybench-w2, mybench-w3"),
    ([*WORKED, WORKED[0]], WORKED_SPEC, "1 ids repeat in field 'uid', e.g. mybench-w1"),
    (WORKED, WORKED_SPEC.replace("question: prompt", "question: '{prompt} {hint}'"), "no field 'hint' (its question)"),
])
def test_bad_benchmark_files_fail_while_planning_naming_file_and_field(tmp_path: Path, rows, spec, message):
    path = _write(tmp_path / "bad.jsonl", rows)
    with pytest.raises(ConfigError) as error:
        _config([f"+eval.benchmark_specs={{mybench: {spec % path}}}", "eval.benchmarks=[mybench]"])
    assert f"benchmark mybench ({path})" in str(error.value) and message in str(error.value)


@pytest.mark.parametrize("override, message", [
    ("+eval.benchmark_specs={mybench: {file: /nonexistent.jsonl, question: q, answer: a}}",
     "eval.benchmark_specs.mybench.file: no such file /nonexistent.jsonl"),
    ("+eval.benchmark_specs={mybench: {hub_id: org/x, file: x.jsonl, question: q, answer: a}}",
     "eval.benchmark_specs.mybench: give exactly one source of hub_id, file, generated; got ['hub_id', 'file']"),
    ("+eval.benchmark_specs={mybench: {hub_id: org/x, question: q, answer: a, kind: choice}}",
     "eval.benchmark_specs.mybench.choices: kind=choice needs the choices' fields"),
    ("+eval.benchmark_specs={other: {hub_id: org/x, question: q, answer: a}}", "unknown benchmark 'mybench'"),
])
def test_bad_descriptions_name_their_key(override: str, message: str):
    with pytest.raises(ConfigError) as error:
        _config([override, "eval.benchmarks=[mybench]"])
    assert message in str(error.value)


def test_a_local_benchmark_enters_the_keys_by_content_not_path(tmp_path: Path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    worked, moved = _write(tmp_path / "a" / "worked.jsonl", WORKED), tmp_path / "b" / "renamed.jsonl"
    shutil.copy(worked, moved)

    def keys(path: Path) -> dict:
        return planned_keys(_config([f"+eval.benchmark_specs={{mybench: {WORKED_SPEC % path}}}", "eval.benchmarks=[mybench]"]))

    before = keys(worked)
    assert keys(moved) == before  # moved: nothing to recompute
    _write(worked, [*WORKED[:2], {**WORKED[2], "worked_solution": "ANSWER: 10"}])
    edited = keys(worked)
    assert edited["eval"] != before["eval"] and edited["select"] != before["select"]
    built_in = planned_keys(_config([f"+eval.benchmark_files.math500={DATA / 'math500' / 'test.jsonl'}", "eval.benchmarks=[math500]"]))
    shutil.copy(DATA / "math500" / "test.jsonl", tmp_path / "math500.jsonl")
    assert planned_keys(_config([f"+eval.benchmark_files.math500={tmp_path / 'math500.jsonl'}", "eval.benchmarks=[math500]"])) == built_in


def test_a_hub_revision_is_none_offline(monkeypatch: pytest.MonkeyPatch):
    from s1x.evaluate.benchmarks import _hub_revision

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    assert _hub_revision("math-ai/aime25") is None
