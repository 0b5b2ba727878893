"""The verdict in words: the one sentence users act on, and the resolution line beside it.

The sentence names every finalist that beats every baseline in the headline cell (the search's
own setting at its longest budget) with one-sided lower bounds of its leads, or says that none
does and the largest lead the runs do not rule out; an unfinished or too small verdict says so
instead. The design line beside it says what the runs were planned to resolve. It reads the
rows of :class:`~lossevo.verdict.rows.Verdict` and computes nothing.
"""

from __future__ import annotations

import math

from lossevo.verdict.formatting import mean_std, points, pstr, signed_points
from lossevo.verdict.plan import POWER
from lossevo.verdict.rows import LossRow, Verdict
from lossevo.verdict.statistics import smallest_sign_flip_p


def sentence(verdict: Verdict) -> str:
    plan, head = verdict.plan, verdict.headline
    where = f"{plan.runs} runs at {head.label}"
    baselines = ", ".join(b.name for b in plan.baselines)
    finalists = verdict.finalists()
    if not finalists:
        return f"no candidate finished its search training: nothing to test against {baselines}"
    done, planned = verdict.done()
    if done < planned:
        return (
            f"the verdict is incomplete: {done} of {planned} validation trainings at {head.label} "
            "are done; run the search's command again (same hydra.run.dir) to finish it"
        )
    too_few = [r.trained_as for r in [*verdict.baselines(), *finalists] if r.finished < 2]
    if too_few:
        return (
            f"too few finished validation runs to test ({', '.join(too_few)}; {where}); "
            "validate with validate.runs >= 2"
        )
    where += tuning_clause(verdict)
    if verdict.winners:
        parts = [f"{r.loss} ({r.trained_as}) {mean_std(r)}" for r in verdict.winners]
        evidence = "; ".join(evidence_of(verdict, r, every=True) for r in verdict.winners)
        return (
            f"{' and '.join(parts)} beat{'s' if len(parts) == 1 else ''} every baseline on test accuracy "
            f"({evidence}), {where}"
        )
    best = finalists[0]
    label = f"{best.loss} ({best.trained_as})"
    if best.failed:
        return (
            f"no finalist beats every baseline reliably: the best, {label}, failed {best.failed} of "
            f"{best.runs} validation runs; {where}"
        )
    binding = verdict.binding(best)
    if binding is not None and binding.identical:
        return (
            f"no finalist beats every baseline at this budget: the best, {label}, trains identically to "
            f"{binding.baseline} (every paired difference is 0); {where}"
        )
    ruled_out = (
        f"; the runs rule out a lead above {signed_points(binding.upper)} points over {binding.baseline} "
        f"({confidence(binding.level)})"
        if binding is not None and not math.isnan(binding.upper)
        else ""
    )
    floor = smallest_sign_flip_p(plan.runs)
    small = (
        f" (with {plan.runs} runs an exact sign-flip test cannot go below p = {floor:.2g}, above the "
        f"level {plan.alpha:g}: add runs)"
        if floor > plan.alpha
        else ""
    )
    return (
        f"no finalist beats every baseline at this budget: the best, {label}, {mean_std(best)} test "
        f"({evidence_of(verdict, best)}){ruled_out}{small}; {where}"
    )


def tuning_clause(verdict: Verdict) -> str:
    """Whether every loss was tuned before its test runs, in one clause."""
    tune = verdict.plan.tune
    if tune is None:
        return "; baselines not tuned (validate.tune=true tunes every loss on validation data first)"
    return (
        f"; every loss tuned on validation data at {tune.budget:,} steps (learning rate, baselines' "
        "coefficients)"
    )


def confidence(level: float) -> str:
    """How a one-sided bound at ``level`` is labelled."""
    return f"one-sided {1 - level:.1%}".replace(".0%", "%")


def resolution(verdict: Verdict) -> str:
    """What the verdict's runs resolve, as planned before they trained: the lead over every
    baseline all its tests find with 80% probability at the assumed spread; the spreads the runs
    showed beside it (a description, not a power computed after the fact)."""
    plan, design = verdict.plan, verdict.plan.design
    if design is None:
        return "design: not recorded (a verdict planned by an older lossevo)"
    if math.isnan(design.resolution):
        return f"design: {plan.runs} run(s) per loss resolve nothing (a paired test needs 2 or more)"
    sized = (
        ""
        if design.target is None
        else f"validate.runs=auto chose {plan.runs} runs for {points(design.target)}; "
    )
    spreads = [c.sd for r in verdict.finalists() for c in verdict.against(r) if not math.isnan(c.sd)]
    seen = (
        f"; the runs showed {points(min(spreads))}"
        + (f" to {points(max(spreads))}" if max(spreads) > min(spreads) else "")
        if spreads
        else ""
    )
    return (
        f"design: {sized}{plan.runs} runs find a lead of {points(design.resolution)} points over every "
        f"baseline with {POWER:.0%} probability (one-sided tests at {design.level:.3g}) if the paired "
        f"differences' spread is {points(design.spread)} points ({design.source}){seen}"
    )


def evidence_of(verdict: Verdict, row: LossRow, every: bool = False) -> str:
    """The paired difference against the deciding baseline, or against each (``every``) with its
    one-sided lower bound, and the p-value of "better than every baseline" (Holm-adjusted when
    there are several finalists)."""
    mine = verdict.against(row)
    binding = verdict.binding(row)
    shown = mine if every else [c for c in [binding] if c is not None]
    if not shown:
        return ""
    if every:
        differences = "; ".join(
            f"vs {c.baseline} {signed_points(c.difference)} points, at least {signed_points(c.lower)}"
            for c in shown
        )
        differences += f" ({confidence(shown[0].level)} bounds)"
    else:
        differences = ", ".join(f"vs {c.baseline} {signed_points(c.difference)} points" for c in shown)
    m = len(verdict.finalists())
    against = " against every baseline" if every and len(mine) > 1 else ""
    if m > 1:
        return f"{differences}; p = {pstr(row.p_holm)}{against}, Holm-adjusted over {m} finalists"
    return f"{differences}; p = {pstr(row.p_every_baseline)}{against}"
