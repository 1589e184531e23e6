"""Budget modes: one module each (s1x/evaluate/modes/<mode>.py, named as its `budget.mode`), one registry.

A mode's module declares its :class:`~s1x.evaluate.modes.mode.Mode`: its settings (a dataclass, the schema that
`budget=<mode>` composes, registered by :func:`register_schemas`), their checks, whether
the extend string matters, whether it decides between rounds, its bounds for Control, its prompt instruction, its
policy settings, its records' extras and its `Rule` for the state machine. Config validation, store keys, the
sweep's inert axes, the engines and the report derive what they need from :data:`MODES` through the functions
here; no other module holds a table by mode. Light: planning a sweep imports it without torch.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

from hydra.core.config_store import ConfigStore

from s1x.config import BudgetConfig, BudgetMode, ConfigError, EvalConfig
from s1x.evaluate.modes.mode import Mode

MODES: dict[BudgetMode, Mode] = {mode: import_module(f"{__name__}.{mode.value}").MODE for mode in BudgetMode}

# Settings every eval key has held since the first store (when one schema held every mode's settings), at the
# defaults they had. A mode that does not read one keys this default, so those keys stay as they were.
ALWAYS_KEYED: dict[str, Any] = {"tokens": None, "times": None, "caps": [], "extensions": [], "steps": None,
                                "length_class": "short", "max_attempts": 16, "think_prefix": ""}


def register_schemas() -> None:
    """Each mode's settings as the schema its presets extend (conf/budget/<preset>.yaml: `defaults: [<mode>_schema]`)."""
    for mode in MODES.values():
        ConfigStore.instance().store(group="budget", name=f"{mode.name.value}_schema", node=mode.settings(mode=mode.name))


def budget_config(mode: BudgetMode, **settings: Any) -> BudgetConfig:
    """A budget of this mode, typed as its module's settings (a setting it does not read is a TypeError)."""
    return MODES[mode].settings(mode=mode, **settings)


def keyed_budget(budget: BudgetConfig) -> dict[str, Any]:
    """What of the budget enters the eval key: its mode and the settings the mode reads."""
    reads = MODES[budget.mode].reads
    keyed = {name: getattr(budget, name) if name in reads else default for name, default in ALWAYS_KEYED.items()}
    return {"mode": budget.mode, **keyed, **{name: getattr(budget, name) for name in reads}}


def extends(budget: BudgetConfig) -> bool:
    """Whether the extend string is appended anywhere, so that it decides the evaluation."""
    return MODES[budget.mode].extends(budget)


def check_budget(budget: BudgetConfig, eval_cfg: EvalConfig) -> None:
    """ConfigError naming the key of the first setting the mode cannot run with."""
    mode = MODES[budget.mode]
    if not isinstance(budget, mode.settings):
        raise ConfigError(f"budget.mode={budget.mode.value} does not match the budget's settings "
                          f"({type(budget).__name__}): choose the mode with budget={budget.mode.value}")
    for key in mode.positive:
        value = getattr(budget, key)
        if value is None or value <= 0:
            raise ConfigError(f"budget={budget.mode.value}: budget.{key} must be positive, got {value}")
    for holds, message in mode.checks(budget, eval_cfg):
        if not holds:
            raise ConfigError(message)


def unread_reason(key: str, budget: BudgetConfig) -> str:
    """Why the extend string decides nothing under this budget ('' where it would). A budget setting the mode
    does not read is no reason: its schema has no such key, so such a cell never composes."""
    if not key.startswith("extend") or extends(budget):
        return ""
    extending = ", ".join(m.name.value for m in MODES.values() if m.extends(_with_points(m)))
    return f"the extension string is appended only where thinking is extended (budget={extending})"


def _with_points(mode: Mode) -> BudgetConfig:
    """A budget of this mode, with extensions where it has them, to tell whether it can append the extension at all."""
    return budget_config(mode.name, **({"extensions": [1]} if "extensions" in mode.reads else {}))


def amount_keys() -> set[str]:
    """Overrides that only change how much a mode thinks: cells that differ in them are one method's curve."""
    return {f"budget.{name}" for mode in MODES.values() for name in mode.amounts}
