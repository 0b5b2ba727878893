"""Replicated searches compared: how often a search finds a loss that holds, and whether one search
method beats another (random search, say) at equal compute (docs/methods.md §11).

The unit is the search: searches that differ only in their seed form a group, and every interval
here is across a group's searches. Per group: the anytime curve (the pick so far against training
steps), the success rate (searches whose verdict beats every baseline, with Wilson intervals), the
pooled lead of each search's pick over each baseline, and the compute. Between two groups that
differ only in their search method: the pick's validation accuracy at the same number of training
steps (the smaller total of either group), the difference of means with a bootstrap interval and a
permutation p-value. A ledger counts every verdict once, Holm-adjusted across them, so a win picked
out of many searches is shown as one of many looks.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from lossevo.analysis.search_record import SearchRecord
from lossevo.errors import LossevoError

LEVEL = 0.05
RESAMPLES = 4000
# Keys in which two groups may differ and still be compared: the search method and its space.
METHOD_KEYS = ("search.", "space.")


@dataclass
class Group:
    """Searches equal in everything but their seed."""

    label: str
    identity: dict[str, Any]
    searches: list[SearchRecord]

    @property
    def verdicts(self) -> list[SearchRecord]:
        """Its searches with a verdict, of the verdict settings most of them share (verdicts of
        other settings measure something else and are never pooled with them)."""
        with_verdict = [s for s in self.searches if s.verdict is not None]
        if not with_verdict:
            return []
        kinds = [s.verdict_settings for s in with_verdict]
        common = max(set(kinds), key=kinds.count)
        return [s for s in with_verdict if s.verdict_settings == common]


@dataclass(frozen=True)
class SuccessRate:
    """Of ``n`` complete verdicts at ``steps``, ``successes`` beat every baseline."""

    steps: int
    successes: int
    n: int
    low: float  # Wilson 95% interval
    high: float


@dataclass(frozen=True)
class Lead:
    """The picks' (best_1's) paired test-accuracy lead over ``baseline`` at ``steps``, one per search."""

    baseline: str
    steps: int
    leads: tuple[float, ...]
    mean: float
    low: float  # t-interval across searches
    high: float


@dataclass(frozen=True)
class Survival:
    """How much of the lead at ``short`` steps survives at ``long``: the ratio of mean leads."""

    baseline: str
    short: int
    long: int
    ratio: float
    low: float  # bootstrap over searches (each search keeps its two leads)
    high: float


@dataclass(frozen=True)
class Contrast:
    """Two groups' picks at equal compute: validation accuracy after ``steps`` steps of search."""

    a: str
    b: str
    steps: int
    mean_a: float
    mean_b: float
    difference: float  # a - b
    low: float  # bootstrap 95% interval, seeds resampled within each group
    high: float
    p: float  # two-sided permutation test
    n_a: int
    n_b: int

    @property
    def sentence(self) -> str:
        where = (
            f"at equal compute ({self.steps:,} training steps each; {self.n_a} and {self.n_b} seeds): "
            f"the pick's validation accuracy {self.mean_a:.4f} vs {self.mean_b:.4f}, difference "
            f"{self.difference:+.4f} [{self.low:+.4f}, {self.high:+.4f}], permutation p {_p(self.p)}"
        )
        if self.p < LEVEL and (self.low > 0 or self.high < 0):
            winner, loser = (self.a, self.b) if self.difference > 0 else (self.b, self.a)
            return f"{winner} beats {loser} {where}"
        return f"cannot tell {self.a} and {self.b} apart {where}"


@dataclass(frozen=True)
class LedgerEntry:
    """One verdict: its own claim (the smallest Holm p of its finalists at the headline) and that
    p adjusted by Holm across every verdict compared."""

    search: str
    group: str
    p: float
    p_adjusted: float

    @property
    def beats(self) -> bool:
        return self.p < LEVEL

    @property
    def beats_adjusted(self) -> bool:
        return self.p_adjusted < LEVEL


@dataclass
class GroupSummary:
    group: Group
    success: list[SuccessRate]
    leads: list[Lead]
    survival: list[Survival]
    final: tuple[float, float, float]  # mean pick validation accuracy at each search's end, t-interval
    search_steps: float  # means per search
    search_seconds: float
    verdict_steps: float
    verdict_seconds: float
    wasted_share: float  # of the search's steps, spent on trainings that ended without a result


@dataclass
class Comparison:
    groups: list[GroupSummary]
    contrasts: list[Contrast]
    ledger: list[LedgerEntry]
    notes: list[str] = field(default_factory=list)  # what could not be compared, and why


def compare_searches(records: list[SearchRecord]) -> Comparison:
    """Group ``records`` by identity without the seed and compare them (see the module docstring)."""
    if not records:
        raise LossevoError("no searches to compare: name run folders, or a multirun root holding them")
    groups = _groups(records)
    notes: list[str] = []
    summaries = [_summary(g, notes) for g in groups]
    contrasts = []
    for i, a in enumerate(groups):
        for b in groups[i + 1 :]:
            differ = _differing(a.identity, b.identity)
            other = [k for k in differ if not k.startswith(METHOD_KEYS)]
            if other:
                notes.append(
                    f"{a.label} and {b.label} are not compared: they differ in "
                    f"{', '.join(other[:4])} (not only in the search method)"
                )
            elif min(len(a.searches), len(b.searches)) < 2:
                notes.append(
                    f"{a.label} and {b.label} are not tested against each other: a group has a "
                    "single search (run several seeds: seed=0,1,2,3,4)"
                )
            else:
                contrasts.append(_contrast(a, b, notes))
    return Comparison(summaries, contrasts, _ledger(groups), notes)


# ---------------------------------------------------------------------------- groups
def _groups(records: list[SearchRecord]) -> list[Group]:
    keyed: dict[str, list[SearchRecord]] = {}
    for r in records:
        keyed.setdefault(json.dumps(r.identity, sort_keys=True, default=str), []).append(r)
    identities = [json.loads(k) for k in keyed]
    differing = sorted({k for ident in identities for k in _differing(ident, identities[0])})
    # Named by what they are (search=RandomSearch), not by each of its own options.
    differing = [k for k in differing if k.endswith("._target_")] or differing
    groups = []
    for key, searches in keyed.items():
        ident = json.loads(key)
        parts = [f"{_short_key(k)}={_short_value(ident.get(k))}" for k in differing][:3]
        label = ", ".join(parts) or "all"
        groups.append(Group(label, ident, sorted(searches, key=lambda s: (s.seed, str(s.folder)))))
    return sorted(groups, key=lambda g: g.label)


def _differing(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def _short_key(key: str) -> str:
    return key.removesuffix("._target_")


def _short_value(value: Any) -> str:
    text = str(value)
    return text.rsplit(".", 1)[-1] if "." in text and " " not in text and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------- one group
def _summary(group: Group, notes: list[str]) -> GroupSummary:
    searches = group.searches
    without = [s.name for s in searches if s.verdict is None]
    if without:
        notes.append(
            f"{group.label}: {len(without)} of {len(searches)} searches have no verdict "
            f"({', '.join(without[:4])}); they count in the anytime curves, not in the success "
            "rate or the leads"
        )
    others = [s.name for s in searches if s.verdict is not None and s not in group.verdicts]
    if others:
        notes.append(
            f"{group.label}: {len(others)} verdicts measured other settings than the rest "
            f"({', '.join(others[:4])}; the rest: {group.verdicts[0].verdict_settings}) and are not "
            "pooled with them"
        )
    steps = sum(s.search_steps for s in searches)
    return GroupSummary(
        group=group,
        success=_success(group),
        leads=(leads := _leads(group)),
        survival=_survival(group, leads),
        final=_mean_interval([s.final for s in searches]),
        search_steps=steps / len(searches),
        search_seconds=float(np.mean([s.search_seconds for s in searches])),
        verdict_steps=float(np.mean([s.verdict_steps for s in group.verdicts])) if group.verdicts else 0.0,
        verdict_seconds=float(np.mean([s.verdict_seconds for s in group.verdicts]))
        if group.verdicts
        else 0.0,
        wasted_share=sum(s.wasted_steps for s in searches) / steps if steps else math.nan,
    )


def _own_cells(record: SearchRecord) -> list[Any]:
    """The verdict's cells in the search's own setting (where success and leads are read)."""
    assert record.verdict is not None
    return [c for c in record.verdict.cells if not c.setting]


def _success(group: Group) -> list[SuccessRate]:
    from statsmodels.stats.proportion import proportion_confint

    found: dict[int, list[bool]] = {}
    for s in group.verdicts:
        assert s.verdict is not None
        for cell in _own_cells(s):
            done, planned = s.verdict.done(cell)
            if done == planned:  # an unfinished verdict is not a failure of the search
                found.setdefault(cell.steps, []).append(any(r.beats for r in s.verdict.finalists(cell)))
    out = []
    for steps in sorted(found):
        k, n = sum(found[steps]), len(found[steps])
        low, high = proportion_confint(k, n, alpha=LEVEL, method="wilson")
        out.append(SuccessRate(steps, k, n, float(low), float(high)))
    return out


def _leads(group: Group) -> list[Lead]:
    found: dict[tuple[str, int], list[float]] = {}
    for s in group.verdicts:
        assert s.verdict is not None
        for cell in _own_cells(s):
            picks = s.verdict.finalists(cell)
            if not picks:
                continue
            for c in s.verdict.against(picks[0]):  # best_1: the search's pick
                if not math.isnan(c.difference):
                    found.setdefault((c.baseline, cell.steps), []).append(c.difference)
    out = []
    for (baseline, steps), leads in sorted(found.items()):
        mean, low, high = _mean_interval(leads)
        out.append(Lead(baseline, steps, tuple(leads), mean, low, high))
    return out


def _survival(group: Group, leads: list[Lead]) -> list[Survival]:
    """Short and long budget of each baseline: the ratio of mean leads, bootstrapped over searches."""
    out = []
    for baseline in sorted({lead.baseline for lead in leads}):
        mine = sorted((lead for lead in leads if lead.baseline == baseline), key=lambda lead: lead.steps)
        if len(mine) < 2 or len(mine[0].leads) != len(mine[-1].leads) or len(mine[0].leads) < 2:
            continue
        short, long = np.array(mine[0].leads), np.array(mine[-1].leads)
        ratio = float(long.mean() / short.mean()) if short.mean() else math.nan
        rng = np.random.default_rng(0)
        draws = rng.integers(0, len(short), size=(RESAMPLES, len(short)))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = long[draws].mean(axis=1) / short[draws].mean(axis=1)
        ratios = ratios[np.isfinite(ratios)]
        low, high = np.percentile(ratios, [2.5, 97.5]) if len(ratios) else (math.nan, math.nan)
        out.append(Survival(baseline, mine[0].steps, mine[-1].steps, ratio, float(low), float(high)))
    return out


def _mean_interval(values: list[float]) -> tuple[float, float, float]:
    x = np.array([v for v in values if not math.isnan(v)])
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if len(x) < 2 or x.std(ddof=1) == 0:
        return mean, mean if len(x) > 1 else math.nan, mean if len(x) > 1 else math.nan
    low, high = stats.t.interval(1 - LEVEL, len(x) - 1, loc=mean, scale=stats.sem(x))
    return mean, float(low), float(high)


# ---------------------------------------------------------------------------- between groups
def _contrast(a: Group, b: Group, notes: list[str]) -> Contrast:
    totals = {g.label: float(np.mean([s.search_steps for s in g.searches])) for g in (a, b)}
    if abs(totals[a.label] - totals[b.label]) > 0.1 * min(totals.values()):
        notes.append(
            f"{a.label} and {b.label} spent different compute ({totals[a.label]:,.0f} vs "
            f"{totals[b.label]:,.0f} training steps per search on average): they are compared at "
            "the smaller total; give both the same search.budget for a fair sweep"
        )
    steps = int(min(s.search_steps for s in [*a.searches, *b.searches]))
    x = np.array([s.best_at(steps) for s in a.searches])
    y = np.array([s.best_at(steps) for s in b.searches])
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    if min(len(x), len(y)) < 2:
        nan = math.nan
        return Contrast(a.label, b.label, steps, nan, nan, nan, nan, nan, nan, len(x), len(y))
    diff = float(x.mean() - y.mean())

    def statistic(u: np.ndarray, v: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(u, axis=axis) - np.mean(v, axis=axis)

    rng = np.random.default_rng(0)
    if np.ptp(np.concatenate([x, y])) == 0:
        low = high = diff
        p = 1.0
    else:
        interval = stats.bootstrap(
            (x, y), statistic, n_resamples=RESAMPLES, method="percentile", random_state=rng
        )
        low, high = float(interval.confidence_interval.low), float(interval.confidence_interval.high)
        p = float(stats.permutation_test((x, y), statistic, n_resamples=RESAMPLES, random_state=rng).pvalue)
    return Contrast(
        a.label, b.label, steps, float(x.mean()), float(y.mean()), diff, low, high, p, len(x), len(y)
    )


def _ledger(groups: list[Group]) -> list[LedgerEntry]:
    from statsmodels.stats.multitest import multipletests

    claims = []
    for g in groups:
        for s in g.searches:  # every verdict, pooled with others or not
            if s.verdict is None:
                continue
            ps = [
                r.p_holm for r in s.verdict.finalists() if r.p_holm is not None and not math.isnan(r.p_holm)
            ]
            if ps:
                claims.append((s.name, g.label, min(ps)))
    if not claims:
        return []
    adjusted = multipletests([c[2] for c in claims], alpha=LEVEL, method="holm")[1]
    return [
        LedgerEntry(name, label, p, float(q)) for (name, label, p), q in zip(claims, adjusted, strict=True)
    ]


def _p(p: float) -> str:
    return "n/a" if math.isnan(p) else f"{p:.2g}"


def find_searches(folders: list[Path]) -> list[Path]:
    """Run folders holding a journal: each folder itself, or the jobs under a multirun root."""
    found: list[Path] = []
    for folder in folders:
        if not folder.exists():
            raise LossevoError(f"{folder} does not exist: name run folders or a multirun root")
        if (folder / "journal.sqlite").is_file():
            found.append(folder)
            continue
        jobs = sorted(p.parent for p in folder.glob("*/journal.sqlite"))
        jobs += sorted(p.parent for p in folder.glob("*/*/journal.sqlite"))
        if not jobs:
            raise LossevoError(
                f"{folder} holds no search (no journal.sqlite in it or in its job folders): "
                "name a search's run folder or the multirun root of a sweep of searches"
            )
        found += jobs
    return list(dict.fromkeys(found))
