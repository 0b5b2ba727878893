"""The verdict in words: the one sentence users act on, and the resolution line beside it.

The sentence names every finalist that beats every baseline in the headline cell (the search's
own setting at its longest budget), or says that none does and what difference the verdict could
have detected at 80% power; an unfinished or underpowered verdict says so instead. It reads the
rows of :class:`~lossevo.verdict.rows.Verdict` and computes nothing.
"""

from __future__ import annotations

import math

from lossevo.verdict.formatting import mean_std, points, pstr, signed_points
from lossevo.verdict.rows import POWER, LossRow, Verdict
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
    could = (
        f"; with {plan.runs} runs and this spread the verdict could detect a "
        f"{points(best.detectable)}-point difference at {POWER:.0%} power"
        if not math.isnan(best.detectable)
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
        f"({evidence_of(verdict, best)}){could}{small}; {where}"
    )


def resolution(verdict: Verdict) -> str:
    """What the headline could detect: the difference against every baseline found with 80%
    probability by these runs at this spread (the largest over the finalists)."""
    values = [r.detectable for r in verdict.finalists() if not math.isnan(r.detectable)]
    if not values:
        return "resolution: not measurable (fewer than 2 paired runs)"
    return (
        f"resolution: a {points(max(values))}-point difference against every baseline is detected "
        f"with {POWER:.0%} probability ({verdict.plan.runs} runs, {verdict.headline.label})"
    )


def evidence_of(verdict: Verdict, row: LossRow, every: bool = False) -> str:
    """The paired difference (points, 95% interval) against the deciding baseline, or against
    each (``every``), and the p-value of "better than every baseline"."""
    mine = verdict.against(row)
    binding = verdict.binding(row)
    shown = mine if every else [c for c in [binding] if c is not None]
    if not shown:
        return ""
    differences = ", ".join(
        f"vs {c.baseline} {signed_points(c.difference)} points [{points(c.low)}, {points(c.high)}]"
        for c in shown
    )
    m = len(verdict.finalists())
    holm_note = f", Holm over {m}: {pstr(row.p_holm)}" if m > 1 else ""
    against = " against every baseline" if every and len(mine) > 1 else ""
    return f"{differences}; p = {pstr(row.p_every_baseline)}{against}{holm_note}"
