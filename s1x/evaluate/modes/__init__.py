"""Budget modes: one module each (s1x/evaluate/modes/<mode>.py, named as its `budget.mode`), one registry.

A mode's module declares its :class:`~s1x.evaluate.modes.mode.Mode`: the settings it reads, their checks, whether
the extend string matters, whether it decides between rounds, its bounds for Control, its prompt instruction, its
policy settings, its records' extras and its `Rule` for the state machine. Config validation, store keys, the
sweep's inert axes, the engines and the report derive what they need from :data:`MODES` through the functions
here; no other module holds a table by mode. Light: planning a sweep imports it without torch.
"""
from __future__ import annotations

import dataclasses
from importlib import import_module
from typing import Any

from s1x.config import BudgetConfig, BudgetMode, ConfigError, EvalConfig
from s1x.evaluate.modes.mode import Mode

MODES: dict[BudgetMode, Mode] = {mode: import_module(f"{__name__}.{mode.value}").MODE for mode in BudgetMode}

# Settings every eval key has held since the first store. A mode that does not read one keys its default, so
# those keys stay as they were while a value the mode ignores cannot change its key.
ALWAYS_KEYED = ("tokens", "times", "caps", "extensions", "steps", "length_class", "max_attempts", "think_prefix")


def _defaults() -> dict[str, Any]:
    return {f.name: f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
            for f in dataclasses.fields(BudgetConfig)}


def keyed_budget(budget: BudgetConfig) -> dict[str, Any]:
    """What of the budget enters the eval key: its mode and the settings the mode reads."""
    reads, defaults = MODES[budget.mode].reads, _defaults()
    keyed = {name: getattr(budget, name) if name in reads else defaults[name] for name in ALWAYS_KEYED}
    return {"mode": budget.mode, **keyed, **{name: getattr(budget, name) for name in reads}}


def extends(budget: BudgetConfig) -> bool:
    """Whether the extend string is appended anywhere, so that it decides the evaluation."""
    return MODES[budget.mode].extends(budget)


def check_budget(budget: BudgetConfig, eval_cfg: EvalConfig) -> None:
    """ConfigError naming the key of the first setting the mode cannot run with."""
    mode = MODES[budget.mode]
    for key in mode.positive:
        value = getattr(budget, key)
        if value is None or value <= 0:
            raise ConfigError(f"budget={budget.mode.value}: budget.{key} must be positive, got {value}")
    for holds, message in mode.checks(budget, eval_cfg):
        if not holds:
            raise ConfigError(message)


def unread_reason(key: str, budget: BudgetConfig) -> str:
    """Why a budget setting or the extend string decides nothing under this budget ('' where it would)."""
    mode = MODES[budget.mode]
    if key.startswith("extend"):
        extending = ", ".join(m.name.value for m in MODES.values() if m.extends(_with_points(m)))
        return "" if mode.extends(budget) else f"the extension string is appended only where thinking is extended (budget={extending})"
    setting = key.removeprefix("budget.")
    if key.startswith("budget.") and setting not in mode.reads:
        return f"budget={budget.mode.value} does not read budget.{setting} (it reads {', '.join(mode.reads) or 'nothing'})"
    return ""


def _with_points(mode: Mode) -> BudgetConfig:
    """A budget of this mode with extensions, to tell whether the mode can append the extension at all."""
    return BudgetConfig(mode=mode.name, extensions=[1])


def amount_keys() -> set[str]:
    """Overrides that only change how much a mode thinks: cells that differ in them are one method's curve."""
    return {f"budget.{name}" for mode in MODES.values() for name in mode.amounts}
