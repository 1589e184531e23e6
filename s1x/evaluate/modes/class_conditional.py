"""budget=class_conditional: a generic short or long thinking prompt (the paper's section 3.1)."""
from dataclasses import dataclass
from enum import Enum

from s1x.config import BudgetMode
from s1x.evaluate.modes.mode import Mode, Prefixed


class LengthClass(Enum):
    short = "short"
    long = "long"


@dataclass
class ClassConditionalBudget(Prefixed):
    length_class: LengthClass = LengthClass.short  # which generic prompt


PROMPTS = {LengthClass.short: "Think briefly, then answer.",
           LengthClass.long: "Think step by step for as long as you need, checking your work, then answer."}

MODE = Mode(BudgetMode.class_conditional, ClassConditionalBudget, amounts=("length_class",),
            instruction=lambda budget: PROMPTS[budget.length_class])
