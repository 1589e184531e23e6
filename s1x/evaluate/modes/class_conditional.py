"""budget=class_conditional: a generic short or long thinking prompt (the paper's section 3.1)."""
from s1x.config import BudgetMode, LengthClass
from s1x.evaluate.modes.mode import Mode

PROMPTS = {LengthClass.short: "Think briefly, then answer.",
           LengthClass.long: "Think step by step for as long as you need, checking your work, then answer."}

MODE = Mode(BudgetMode.class_conditional, reads=("length_class", "think_prefix"), amounts=("length_class",),
            instruction=lambda budget: PROMPTS[budget.length_class])
