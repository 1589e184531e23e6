"""The budget modes' registry: every mode is one module, and what the rest of s1x knows of a mode it derives from it."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException

from s1x.config import BudgetMode, ConfigError
from s1x.evaluate.modes import ALWAYS_KEYED, MODES, amount_keys, budget_config, extends, keyed_budget
from s1x.evaluate.modes.class_conditional import LengthClass
from s1x.keys import planned_keys
from s1x.report.table import Row, _method
from tests.conftest import ROOT, validated_config

MODES_DIR = ROOT / "s1x" / "evaluate" / "modes"


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
    assert extends(budget_config(BudgetMode(mode), **({"extensions": [1]} if "extensions" in reads else {}))) is extending
    # The eval key holds the mode's own settings; the settings every key always held enter at their defaults.
    budget = budget_config(BudgetMode(mode), **{name: value for name, value in EVERY_SETTING.items() if name in reads})
    keyed = keyed_budget(budget)
    for name in keyed.keys() - {"mode"}:
        assert keyed[name] == (getattr(budget, name) if name in reads else ALWAYS_KEYED[name]), name
    assert keyed.keys() - {"mode"} == reads | set(ALWAYS_KEYED)


EVERY_SETTING = dict(tokens=7, times=3, caps=[5], extensions=[1], steps=4, length_class=LengthClass.long,
                     max_attempts=2, think_prefix="x", suppress=["Hmm"], threshold=0.5, probe_every=9, probe_tokens=3,
                     agree=4, alpha=2.0, probability=0.5, transition=".", window=5, top_k=2, keep=0.5, warmup=1,
                     consensus=0.8)


def test_a_budget_holds_only_its_modes_settings():
    """budget=<mode> composes its module's schema: a setting of another mode is a typo, here and in Hydra."""
    with pytest.raises(TypeError, match="steps"):
        budget_config(BudgetMode.max, steps=4)
    with pytest.raises(ConfigCompositionException, match="Could not override 'budget.steps'") as error:
        validated_config("budget=max", "budget.steps=4")
    assert "Key 'steps' not in 'MaxBudget'" in str(error.value.__cause__)
    with pytest.raises(ConfigError, match="budget.mode=min does not match .*MaxBudget.*budget=min"):
        validated_config("budget=max", "budget.mode=min")
    assert validated_config("budget=max", "budget.tokens=4").budget == budget_config(BudgetMode.max, tokens=4)


def test_bounds_come_from_the_mode():
    assert MODES[BudgetMode.max].bounds(budget_config(BudgetMode.max, tokens=64)) == [None, 64]
    assert MODES[BudgetMode.min].bounds(budget_config(BudgetMode.min, tokens=12)) == [12, None]
    assert MODES[BudgetMode.ignore].bounds(budget_config(BudgetMode.ignore, times=2)) is None


def test_no_module_outside_the_modes_branches_on_a_mode():
    """Outside s1x/evaluate/modes/ a mode is only named to build a budget of it (the curve's branches, difficulty
    scoring's plain run): nothing compares against one or keys a table by one."""
    for path in (ROOT / "s1x").rglob("*.py"):
        if MODES_DIR in path.parents or path.name == "config.py":
            continue
        text = path.read_text()
        for match in re.finditer(r"BudgetMode\.\w+", text):
            before = text[max(0, match.start() - 14):match.start()]
            assert before == "budget_config(", f"{path.relative_to(ROOT)}: {text[match.start() - 40:match.end() + 20]!r}"


def test_a_setting_the_mode_does_not_read_cannot_be_set_and_the_prefix_keys_only_where_read(tmp_path: Path):
    """The drift the registry fixed: budget.steps entered budget=max's key, so budget.steps=4,6 recomputed and
    passed the inert-axis check. Now budget=max has no budget.steps to set, and the curve, whose prompt never held
    a think prefix, has no budget.think_prefix."""
    store = f"store_dir={tmp_path}"
    for overrides in (["budget=max", "budget.steps=4"], ["budget.think_prefix=Let"]):
        with pytest.raises(ConfigCompositionException, match="Could not override"):
            validated_config(*overrides, store)
    # Where the mode reads it, it enters the key.
    assert planned_keys(validated_config("budget=none", "budget.think_prefix=Let", store)) != planned_keys(validated_config("budget=none", store))
    # The settings every key held before a mode had its own schema enter at their old defaults: a new mode's
    # setting changes none of the older modes' keys.
    assert keyed_budget(budget_config(BudgetMode.none))["tokens"] is None


def test_a_modes_amounts_make_one_curve_in_the_report():
    """budget=entropy budget.threshold=0.5,1.0 is one method at two budgets, not two methods."""
    assert {"budget.threshold", "budget.tokens", "budget.caps"} <= amount_keys()
    rows = [Row(f"d{t}", [], {"budget": "entropy", "budget.threshold": t}, "done", "", {}) for t in ("0.5", "1.0")]
    assert _method(rows[0]) == _method(rows[1]) == "budget=entropy"
