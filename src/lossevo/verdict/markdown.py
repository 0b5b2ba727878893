"""``verdict.md``: the verdict's rows as a page (the sentence, a table per cell, transfer,
faithfulness, cost and every look). It reads :class:`~lossevo.verdict.rows.Verdict`; nothing here
computes a statistic."""

from __future__ import annotations

import math
import time

from lossevo.verdict.faithfulness import MIN_LOSSES
from lossevo.verdict.formatting import decimals, finished, mean_std, points, pstr, signed_points
from lossevo.verdict.plan import ValidationCell
from lossevo.verdict.rows import Verdict
from lossevo.verdict.sentence import confidence, resolution, sentence


def markdown(verdict: Verdict) -> list[str]:
    plan = verdict.plan
    md = ["# Verdict", "", f"**{sentence(verdict)}**", ""]
    md.append(
        f"Test accuracy at the end of each validation training, validation accuracy at the same step "
        f"beside it: the finalists were chosen on validation data only. Every loss trained "
        f"{plan.runs} times per cell with fresh seeds (run r of every loss shares its seeds, so "
        f"losses are compared in pairs). "
        f"A finalist beats the baselines when it beats each of them: one-sided paired t-tests, the "
        f"largest p over the baselines, Holm-adjusted over {len(plan.finalists)} finalist"
        f"{'' if len(plan.finalists) == 1 else 's'}, level {plan.alpha}, every run finished. Beside "
        f"each difference, its one-sided bounds at the test's level ({confidence(_level(verdict))} each; "
        f"together the {1 - 2 * _level(verdict):.0%} two-sided interval): the lower bound is above 0 exactly "
        "when that test passes. p-values are not adjusted unless marked Holm."
    )
    md += ["", f"{resolution(verdict)}."]
    md += _tuning(verdict)
    for i, cell in enumerate(verdict.cells):
        label = cell.label
        md += ["", f"## Headline: {label}" if i == 0 else f"## {label[:1].upper()}{label[1:]}", ""]
        md += _cell_table(verdict, cell)
    if len(verdict.cells) > 1:
        md += [
            "",
            "## Does it transfer?",
            "",
            "Against the baseline each finalist is least clearly better than, in every cell, with the "
            "one-sided lower bound of the lead.",
            "",
        ]
        md += _transfer_table(verdict)
    md += _test_set_table(verdict)
    md += ["", "## Faithfulness of the ranking (Kendall τ, bootstrap 95% interval)", ""]
    if verdict.taus:
        md += ["| between | τ | 95% interval | p | losses |", "|---|---|---|---|---|"]
        md += [
            f"| {a.label} | {decimals(a.tau.tau, 3)} | [{decimals(a.low, 2)}, {decimals(a.high, 2)}] | "
            f"{decimals(a.tau.p, 3)} | {a.tau.n} |"
            for a in verdict.taus
        ]
    else:
        md.append(
            f"Not measured: no two rungs share {MIN_LOSSES} or more candidates, and no rung trained "
            "several seeds (search.fidelity.runs)."
        )
    md += _cost_table(verdict)
    md += _looks(verdict)
    return md


def _level(verdict: Verdict) -> float:
    """The level of every test and bound: Holm's first step, alpha over the finalists."""
    return verdict.plan.alpha / max(1, len(verdict.plan.finalists))


def _cell_table(verdict: Verdict, cell: ValidationCell) -> list[str]:
    finalists, baselines = verdict.finalists(cell), verdict.baselines(cell)
    names = [b.loss for b in baselines]
    head = (
        "| loss | finished | test | validation | "
        + " | ".join(f"vs {n}: Δ points [bounds], p (Welch; sign-flip), r" for n in names)
        + " | p, every baseline (Holm-adjusted) | beats |"
    )
    out = [head, "|" + "---|" * (6 + len(names))]
    for r in finalists:
        comps = " | ".join(
            f"{signed_points(c.difference)} [{signed_points(c.lower)}, {signed_points(c.upper)}], "
            f"{pstr(c.p_paired)} ({pstr(c.p_welch)}; {pstr(c.p_signflip)}), {decimals(c.correlation, 2)}"
            for c in verdict.against(r)
        )
        out.append(
            f"| {r.loss} ({r.trained_as}) | {finished(r)} | {mean_std(r)} | {mean_std(r, 'val')} | {comps} | "
            f"{pstr(r.p_every_baseline)} ({pstr(r.p_holm)}) | {'yes' if r.beats else 'no'} |"
        )
    for r in baselines:
        out.append(
            f"| {r.loss} | {finished(r)} | {mean_std(r)} | {mean_std(r, 'val')} |" + " |" * (len(names) + 2)
        )
    out += ["", "| loss | equation |", "|---|---|"]
    for r in [*finalists, *baselines]:
        point = verdict.tuned.get(r.trained_as)
        tuned = "" if point is None else f", trained at its tuned {point.label}"
        out.append(f"| {r.trained_as} | `{r.equation}`{tuned} |")
    return out


def _transfer_table(verdict: Verdict) -> list[str]:
    out = [
        "| finalist | " + " | ".join(c.label for c in verdict.cells) + " | wins |",
        "|" + "---|" * (len(verdict.cells) + 2),
    ]
    for f in verdict.finalists():
        cells = []
        for cell in verdict.cells:
            mine = verdict.row(f.loss, cell)
            c = verdict.binding(mine)
            cells.append(
                ""
                if c is None
                else f"{signed_points(c.difference)} (at least {signed_points(c.lower)}) vs {c.baseline}, "
                f"p {pstr(mine.p_every_baseline)}{' ✓' if mine.beats else ''}"
            )
        won, of = verdict.wins(f.loss)
        out.append(f"| {f.loss} | " + " | ".join(cells) + f" | {won} of {of} |")
    return out


def _test_set_table(verdict: Verdict) -> list[str]:
    """The headline's leads with the test images' sampling added to the runs' (docs/methods.md §5)."""
    rows = [
        c
        for c in verdict.comparisons
        if (c.setting, c.steps) == (verdict.headline.setting, verdict.headline.steps)
    ]
    rows = [c for c in rows if not math.isnan(c.lower_images)]
    if not rows:
        return []
    out = [
        "",
        "## The test set is a sample too",
        "",
        "The runs' bounds treat the test images as fixed; another draw of test images would move "
        "every run's accuracy together. With both sources (the runs' variance of the lead plus the "
        f"images', from which images each run got right), one-sided bounds at {confidence(_level(verdict))}:",
        "",
        "| finalist | vs | difference (points) | runs only | runs and images | images' part |",
        "|---|---|---|---|---|---|",
    ]
    out += [
        f"| {c.loss} | {c.baseline} | {signed_points(c.difference)} | "
        f"[{signed_points(c.lower)}, {signed_points(c.upper)}] | "
        f"[{signed_points(c.lower_images)}, {signed_points(c.upper_images)}] | {c.images_share:.0%} |"
        for c in rows
    ]
    return out


def _tuning(verdict: Verdict) -> list[str]:
    """The tuning grid, every point's validation result and the point each loss's test runs used."""
    tune = verdict.plan.tune
    out = ["", "## Tuning", ""]
    if tune is None:
        return [
            *out,
            "Not tuned: every loss trained with the setting's recipe (learning rate, and each baseline's own "
            "coefficient as configured), so a found loss may win by acting as a better step size or "
            "smoothing strength. `validate.tune=true` chooses every loss's learning rate and each "
            "baseline's coefficient on validation data before the test runs.",
        ]
    coefficients = "; ".join(f"{k} {', '.join(f'{v:g}' for v in vs)}" for k, vs in tune.coefficients.items())
    out += [
        f"Before the test runs, on validation data with seeds of their own ({tune.runs} training"
        f"{'' if tune.runs == 1 else 's'} per point, {tune.budget:,} steps, the search's setting): every "
        f"loss's learning rate x{', x'.join(f'{v:g}' for v in tune.lr)} of the setting's, and each "
        f"baseline's own coefficient where it has one ({coefficients}); each loss's own setting is a "
        "point too and wins ties. The point with the best validation mean is the one its test runs "
        "used, in every cell.",
        "",
        "| loss | point | validation | finished | chosen |",
        "|---|---|---|---|---|",
    ]
    for r in verdict.tuning:
        failed = f" ({r.failed} failed)" if r.failed else ""
        out.append(
            f"| {r.loss} | {r.point} | {decimals(r.val_mean, 4)} | {r.finished}{failed} | "
            f"{'**chosen**' if r.chosen else ''} |"
        )
    return out


def _cost_table(verdict: Verdict) -> list[str]:
    costs = verdict.costs
    out = [
        "",
        "## Cost",
        "",
        f"| phase | where | trainings | steps | seconds | {'GPU' if verdict.plan.gpu else 'CPU'}-hours |",
        "|---|---|---|---|---|---|",
    ]
    if any(c.reused for c in costs):
        out[3:3] = [
            "Reused: baseline runs another search of the sweep trained (same seeds), not paid again.",
            "",
        ]
    for c in costs:
        hours = c.seconds / 3600
        trainings = f"{c.trainings} (+{c.reused} reused)" if c.reused else str(c.trainings)
        out.append(f"| {c.phase} | {c.where} | {trainings} | {c.steps:,} | {c.seconds:,.0f} | {hours:.3f} |")
    seconds = sum(c.seconds for c in costs if c.phase in ("search", "verdict"))
    out.append(
        f"| all | | {sum(c.trainings for c in costs)} | {sum(c.steps for c in costs):,} | "
        f"{seconds:,.0f} | {seconds / 3600:.3f} |"
    )
    return out


def _looks(verdict: Verdict) -> list[str]:
    out = ["", "## Looks at this verdict", ""]
    for n, look in enumerate(verdict.looks, start=1):
        p = look.plan
        out.append(
            f"{n}. {time.strftime('%Y-%m-%d %H:%M', time.gmtime(look.at))} UTC: {p['runs']} runs, "
            f"steps {', '.join(f'{s:,}' for s in p['steps'])}, settings "
            f"{', '.join(s or 'the search' for s in p['settings'])}, top_k {p['top_k']}, alpha "
            f"{p['alpha']}, baselines {', '.join(p['baselines'])}{_assumed(p.get('design'))}"
        )
    if len(verdict.looks) > 1:
        out += [
            "",
            f"This verdict was computed with {len(verdict.looks)} plans. Its p-values assume one plan "
            "fixed in advance: a plan extended after seeing a p-value overstates the evidence.",
        ]
    return out


def _assumed(design: dict | None) -> str:
    """What a look's plan assumed about the spread (plans of older lossevo recorded nothing)."""
    if not design:
        return ""
    return (
        f"; planned to resolve {points(design['resolution'])} points at an assumed spread of "
        f"{points(design['spread'])} ({design['source']})"
    )
