"""A budget config and a tokenizer's format, made into the token-level policy the state machine forces."""
from __future__ import annotations

from s1x.chat import S1Format
from s1x.config import BudgetConfig, EvalConfig, ExtendConfig
from s1x.evaluate.budget import ForcingPolicy
from s1x.evaluate.modes import MODES

ANSWER_CUE = "Final Answer:"


def forcing_policy(fmt: S1Format, eval_cfg: EvalConfig, budget: BudgetConfig, extend: ExtendConfig) -> ForcingPolicy:
    m = fmt.markers
    end_ids = tuple(dict.fromkeys([fmt.end_of_turn_id, fmt.tokenizer.eos_token_id]))
    return ForcingPolicy(
        mode=budget.mode,
        thinking_limit=eval_cfg.max_thinking_tokens, answer_limit=eval_cfg.max_answer_tokens,
        think_end_id=fmt.think_end_id, end_ids=end_ids,
        extension_ids=tuple(fmt.encode(extend.string)),
        answer_open_ids=tuple(fmt.encode(m.answer_start)),
        cap_ids=tuple(fmt.encode("\n" + m.answer_start + ANSWER_CUE)),
        rule=MODES[budget.mode].rule, **MODES[budget.mode].policy(fmt.tokenizer, budget),
    )
