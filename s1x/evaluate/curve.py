"""A budget-forcing curve from one generation: caps below the natural thinking length, extensions beyond it.

With greedy decoding every point of the curve is a prefix of one run, so the run is generated once and
each point branches off it and generates only its answer:
- extensions k = 0, 1, ... K: the run ignores the end of thinking K times (appending the extend string);
  the run that ignores it k times is the same up to the model's (k+1)-th stop, where it answers instead
  (k = 0: the model's own ending, no forcing);
- caps c: the run capped at c is the same up to min(c, the model's first stop): cut there, it answers
  (forced at the cap, or naturally where the model stopped first).
Each point's records equal those of a separate run at that budget (tests/test_budget.py).

The branches are answered together, and a request that several branches make alike (a cap the model
never reached is its own ending; a second extension it did not take is the first) is generated once.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from s1x.config import BudgetConfig, BudgetMode
from s1x.evaluate.budget import ForcingPolicy, SampleState, run_forcing
from s1x.evaluate.modes import budget_config
from s1x.evaluate.results import Point

Force = Callable[[ForcingPolicy], list[SampleState]]  # the main run, under a policy
Policy = Callable[[BudgetConfig], ForcingPolicy]
Answering = Callable[[int], Callable[[int], None]]  # the branches' sample count -> a hook for how many are answered


def _ended_at_stop(state: SampleState) -> bool:
    """Whether thinking ended where the model stopped (not forced by a cap or the generation limit)."""
    return state.generated[state.thinking_end:state.answer_begin] == list(state.policy.answer_open_ids)


def _first_stop(state: SampleState) -> int | None:
    """Thinking tokens before the model first ended its thinking, if it did."""
    if state.extension_offsets:
        return state.extension_offsets[0]
    return state.thinking_tokens if _ended_at_stop(state) else None


def _answer_at_stop(full: SampleState, policy: ForcingPolicy, end: int, extensions: int) -> SampleState:
    """The run that accepts the stop at generated[end] after `extensions` forced extensions."""
    forced = extensions * len(policy.extension_ids)
    thinking = end - forced
    state = SampleState(full.prompt_ids, policy, generated=full.generated[:end], thinking_tokens=thinking,
                        spent=thinking + extensions, extensions=extensions,
                        extension_offsets=full.extension_offsets[:extensions], rounds=extensions)
    state.advance([policy.think_end_id])
    return state


def _cap_branch(full: SampleState, policy: ForcingPolicy, cap: int) -> SampleState:
    stop = _first_stop(full)
    if stop is not None and stop < cap:
        return _answer_at_stop(full, policy, stop, 0)
    cut = min(cap, full.thinking_tokens if stop is None else stop)
    return SampleState(full.prompt_ids, policy, generated=full.generated[:cut], thinking_tokens=cut, spent=cut, rounds=1)


def _extension_branch(full: SampleState, policy: ForcingPolicy, k: int) -> SampleState:
    if k < full.extensions:
        return _answer_at_stop(full, policy, full.extension_offsets[k], k)
    # The run went no further than k extensions: the k-run is the same run; only whether its budget still
    # asked for more thinking where it ended (hit_limit) is judged against k.
    hit_limit = full.hit_limit if not _ended_at_stop(full) else full.extensions < k
    return dataclasses.replace(full, policy=policy, hit_limit=hit_limit)


def _once_per_request(generate):
    """`generate` that sends each distinct request once and hands its output to every branch that made it."""
    def deduplicated(requests: list) -> list:
        keys = [(tuple(r.prompt_ids), r.max_new_tokens, r.stop_ids, r.suppress_ids) for r in requests]
        distinct: dict = {}
        for key, request in zip(keys, requests):
            distinct.setdefault(key, request)
        outputs = dict(zip(distinct, generate(list(distinct.values()))))
        return [outputs[key] for key in keys]
    return deduplicated


def force_curve(force: Force, generate, policy_for: Policy, caps: list[int], extensions: list[int],
                answering: Answering = lambda total: lambda answered: None) -> dict[str, list[SampleState]]:
    """States per point label ('64' for cap 64, '+2' for two extensions), from one main run.

    The main run ignores the end of thinking max(extensions) times, or without extensions is capped at the
    largest cap; `force` runs it, `generate` (an engine's rounds) generates the branches' answers, all at
    once, reporting them to the hook `answering` returns for their total (a progress bar over all branches)."""
    caps, extensions = sorted(caps), sorted(extensions)
    if extensions:
        times = extensions[-1]
        main = budget_config(BudgetMode.ignore, times=times) if times else budget_config(BudgetMode.none)
    else:
        main = budget_config(BudgetMode.max, tokens=caps[-1])
    runs = force(policy_for(main))
    points: dict[str, list[SampleState]] = {}
    for cap in caps:
        if not extensions and cap == caps[-1]:
            points[Point(cap=cap).label] = runs
            continue
        policy = policy_for(budget_config(BudgetMode.max, tokens=cap))
        points[Point(cap=cap).label] = [_cap_branch(full, policy, cap) for full in runs]
    for k in extensions:
        policy = policy_for(budget_config(BudgetMode.ignore, times=k) if k else budget_config(BudgetMode.none))
        points[Point(extensions=k).label] = [_extension_branch(full, policy, k) for full in runs]
    branches = [state for states in points.values() if states is not runs for state in states]
    on_answered = answering(len(branches))
    run_forcing(_once_per_request(generate), branches, on_answered)
    on_answered(len(branches))  # also where every sample was done already: the main run's own point
    return points
