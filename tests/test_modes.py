"""The budget modes' registry: every mode is one module, and what the rest of s1x knows of a mode it derives from it."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from s1x.config import BudgetConfig, BudgetMode, LengthClass
from s1x.evaluate.modes import MODES, amount_keys, extends, keyed_budget
from s1x.keys import planned_keys
from s1x.report.table import Row, _method
from s1x.validate import inert_axes
from tests.conftest import ROOT, validated_config

MODES_DIR = ROOT / "s1x" / "evaluate" / "modes"


def _cells(*overrides_per_cell: list[str]):
    return [(overrides, validated_config(*overrides)) for overrides in overrides_per_cell]


def test_every_mode_is_one_module_named_as_its_mode():
    assert set(MODES) == set(BudgetMode)
    assert {p.stem for p in MODES_DIR.glob("*.py")} - {"__init__", "mode"} == {m.value for m in BudgetMode}
    for mode, declared in MODES.items():
        assert declared.name is mode and set(declared.amounts) <= set(declared.reads)


@pytest.mark.parametrize("mode, reads, extending, in_rounds", [
    ("none", {"think_prefix"}, False, False),
    ("max", {"tokens", "think_prefix"}, False, False),
    ("min", {"tokens", "think_prefix"}, True, False),
    ("ignore", {"times", "think_prefix"}, True, False),
    ("scale", {"caps", "extensions"}, True, False),  # extending with budget.extensions, as below
    ("token_conditional", {"tokens", "think_prefix"}, False, False),
    ("step_conditional", {"steps", "think_prefix"}, False, False),
    ("class_conditional", {"length_class", "think_prefix"}, False, False),
    ("rejection", {"tokens", "max_attempts", "think_prefix"}, False, False),
    ("no_wait", {"suppress", "think_prefix"}, False, False),
    ("entropy", {"threshold", "times", "think_prefix"}, True, True),
    ("early_exit", {"probe_every", "probe_tokens", "agree", "think_prefix"}, False, True),
    ("schedule", {"tokens", "alpha", "probability", "transition", "think_prefix"}, True, True),
    ("deepconf", {"window", "top_k", "keep", "warmup", "consensus", "think_prefix"}, False, True),
])
def test_the_registry_says_what_each_mode_reads_extends_and_decides(mode, reads, extending, in_rounds):
    declared = MODES[BudgetMode(mode)]
    assert set(declared.reads) == reads and declared.in_rounds is in_rounds
    assert extends(BudgetConfig(mode=BudgetMode(mode), extensions=[1])) is extending
    # The eval key holds the mode's own settings; the settings every key always held enter at their defaults.
    budget = BudgetConfig(mode=BudgetMode(mode), tokens=7, times=3, caps=[5], extensions=[1], steps=4,
                          length_class=LengthClass.long, max_attempts=2, think_prefix="x", suppress=["Hmm"],
                          threshold=0.5, probe_every=9, probe_tokens=3, agree=4, alpha=2.0, probability=0.5,
                          transition=".")
    keyed = keyed_budget(budget)
    default = BudgetConfig(mode=BudgetMode(mode))
    for name in keyed.keys() - {"mode"}:
        assert keyed[name] == getattr(budget if name in reads else default, name), name


def test_bounds_come_from_the_mode():
    assert MODES[BudgetMode.max].bounds(BudgetConfig(mode=BudgetMode.max, tokens=64)) == [None, 64]
    assert MODES[BudgetMode.min].bounds(BudgetConfig(mode=BudgetMode.min, tokens=12)) == [12, None]
    assert MODES[BudgetMode.ignore].bounds(BudgetConfig(mode=BudgetMode.ignore, times=2)) is None


def test_no_module_outside_the_modes_branches_on_a_mode():
    """Outside s1x/evaluate/modes/ a mode is only named to build a budget of it (the curve's branches, difficulty
    scoring's plain run): nothing compares against one or keys a table by one."""
    for path in (ROOT / "s1x").rglob("*.py"):
        if MODES_DIR in path.parents or path.name == "config.py":
            continue
        text = path.read_text()
        for match in re.finditer(r"BudgetMode\.\w+", text):
            before = text[max(0, match.start() - 5):match.start()]
            assert before == "mode=", f"{path.relative_to(ROOT)}: {text[match.start() - 40:match.end() + 20]!r}"


def test_a_setting_the_mode_does_not_read_changes_no_key_and_is_an_inert_axis(tmp_path: Path):
    """The drift the registry fixed: budget.steps entered budget=max's key, so budget.steps=4,6 recomputed and
    passed the inert-axis check."""
    store = f"store_dir={tmp_path}"
    four, six = (validated_config("budget=max", "budget.tokens=64", f"budget.steps={n}", store) for n in (4, 6))
    assert planned_keys(four) == planned_keys(six) == planned_keys(validated_config("budget=max", "budget.tokens=64", store))
    inert = inert_axes(_cells(*[["budget=max", "budget.tokens=64", f"budget.steps={n}", store] for n in (4, 6)]))
    assert list(inert) == ["budget.steps"] and "budget=max does not read budget.steps" in inert["budget.steps"]
    # The curve's prompt never holds budget.think_prefix: it cannot change the curve's key either.
    assert planned_keys(validated_config("budget.think_prefix=Let", store)) == planned_keys(validated_config(store))
    # Where the mode reads it, it does.
    assert planned_keys(validated_config("budget=none", "budget.think_prefix=Let", store)) != planned_keys(validated_config("budget=none", store))


def test_a_modes_amounts_make_one_curve_in_the_report():
    """budget=entropy budget.threshold=0.5,1.0 is one method at two budgets, not two methods."""
    assert {"budget.threshold", "budget.tokens", "budget.caps"} <= amount_keys()
    rows = [Row(f"d{t}", [], {"budget": "entropy", "budget.threshold": t}, "done", "", {}) for t in ("0.5", "1.0")]
    assert _method(rows[0]) == _method(rows[1]) == "budget=entropy"
