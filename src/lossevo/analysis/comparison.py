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


# How an interval across searches was made: searches independent, or sharing their baseline runs.
# Shared runs: the wider of the independent interval and a bootstrap that resamples the searches
# and the shared runs jointly (the bootstrap alone is too narrow with few searches, the independent
# interval alone ignores that every verdict saw the same baseline runs).
WILSON = "Wilson"
T_ACROSS = "t across searches"
JOINT_WILSON = "Wilson, widened by a joint bootstrap of searches and shared baseline runs"
JOINT_T = "t across searches, widened by a joint bootstrap of searches and shared baseline runs"


@dataclass(frozen=True)
class SuccessRate:
    """Of ``n`` complete verdicts at ``steps``, ``successes`` beat every baseline."""

    steps: int
    successes: int
    n: int
    low: float  # 95% interval: Wilson's, or the joint bootstrap's where the verdicts share baseline runs
    high: float
    method: str = WILSON


@dataclass(frozen=True)
class Lead:
    """The picks' (best_1's) paired test-accuracy lead over ``baseline`` at ``steps``, one per search."""

    baseline: str
    steps: int
    leads: tuple[float, ...]
    mean: float
    low: float  # 95% interval: t across searches, or the joint bootstrap where baseline runs are shared
    high: float
    method: str = T_ACROSS


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


def _complete(group: Group) -> dict[int, list[SearchRecord]]:
    """Per budget of the search's own setting, the searches whose verdict finished there."""
    found: dict[int, list[SearchRecord]] = {}
    for s in group.verdicts:
        assert s.verdict is not None
        for cell in _own_cells(s):
            done, planned = s.verdict.done(cell)
            if done == planned and s.verdict.finalists(cell):  # unfinished: not a failure of the search
                found.setdefault(cell.steps, []).append(s)
    return found


def _success(group: Group) -> list[SuccessRate]:
    from statsmodels.stats.proportion import proportion_confint

    out = []
    for steps, searches in sorted(_complete(group).items()):
        beats = [any(r.beats for r in s.verdict.finalists(_cell(s, steps))) for s in searches if s.verdict]
        k, n = sum(beats), len(beats)
        low, high = proportion_confint(k, n, alpha=LEVEL, method="wilson")
        shared = _shared_runs(searches, steps)
        if shared is not None:  # one set of baseline runs behind every verdict: resample it too
            b_low, b_high = _joint_success(shared, searches[0])
            low, high = min(float(low), b_low), max(float(high), b_high)
            out.append(SuccessRate(steps, k, n, low, high, JOINT_WILSON))
            continue
        out.append(SuccessRate(steps, k, n, float(low), float(high)))
    return out


def _cell(record: SearchRecord, steps: int) -> Any:
    return next(c for c in _own_cells(record) if c.steps == steps)


def _leads(group: Group) -> list[Lead]:
    found: dict[tuple[str, int], list[float]] = {}
    joint: dict[tuple[str, int], tuple[float, float]] = {}
    for steps, searches in sorted(_complete(group).items()):
        for s in searches:
            assert s.verdict is not None
            picks = s.verdict.finalists(_cell(s, steps))
            for c in s.verdict.against(picks[0]):  # best_1: the search's pick
                if not math.isnan(c.difference):
                    found.setdefault((c.baseline, steps), []).append(c.difference)
        shared = _shared_runs(searches, steps)
        if shared is not None:
            for name, interval in _joint_leads(shared).items():
                joint[(name, steps)] = interval
    out = []
    for (baseline, steps), leads in sorted(found.items()):
        mean, low, high = _mean_interval(leads)
        if (baseline, steps) in joint:
            b_low, b_high = joint[(baseline, steps)]
            low, high = _wider(low, b_low, min), _wider(high, b_high, max)
            out.append(Lead(baseline, steps, tuple(leads), mean, low, high, JOINT_T))
        else:
            out.append(Lead(baseline, steps, tuple(leads), mean, low, high))
    return out


def _wider(a: float, b: float, pick: Any) -> float:
    return b if math.isnan(a) else pick(a, b)


@dataclass
class SharedRuns:
    """Verdicts that share their baseline runs: the picks' test accuracies ``picks[s, b, r]`` (search,
    baseline, run) beside the one set of baseline runs ``baselines[b, r]`` they were all paired with."""

    names: list[str]
    picks: np.ndarray
    baselines: np.ndarray


def _shared_runs(searches: list[SearchRecord], steps: int) -> SharedRuns | None:
    """The matrices of :class:`SharedRuns`, when every search's verdict read the same baseline runs
    (one store, one seed, equal accuracies); None when they are independent."""
    keys = {s.shared for s in searches}
    if len(searches) < 2 or len(keys) != 1 or None in keys:
        return None
    first = searches[0]
    assert first.verdict is not None
    names = [b.name for b in first.verdict.plan.baselines]
    runs = range(first.verdict.plan.runs)
    picks, bases = [], None
    for s in searches:
        assert s.verdict is not None
        pick = s.verdict.finalists(_cell(s, steps))[0]
        mine = s.runs(pick.trained_as, "", steps)
        base = [[s.runs(n, "", steps).get(r, math.nan) for r in runs] for n in names]
        picks.append([[mine.get(r, math.nan) for r in runs] for _ in names])
        if bases is None:
            bases = base
        elif not np.array_equal(np.array(base), np.array(bases), equal_nan=True):
            return None  # not the same runs after all (a store that was replaced): independent
    p, b = np.array(picks), np.array(bases)
    if np.isnan(p).any() or np.isnan(b).any():
        return None
    return SharedRuns(names, p, b)


def _draws(shared: SharedRuns) -> tuple[np.ndarray, np.ndarray]:
    """Resampled searches and, jointly, resampled runs of the shared baselines (one per draw)."""
    rng = np.random.default_rng(0)
    n, runs = shared.picks.shape[0], shared.picks.shape[2]
    return rng.integers(0, n, size=(RESAMPLES, n)), rng.integers(0, runs, size=(RESAMPLES, runs))


def _resampled_differences(shared: SharedRuns) -> np.ndarray:
    """Paired differences pick - baseline under each draw: shape (draws, searches, baselines, runs)."""
    searches, runs = _draws(shared)
    picks = shared.picks[searches]  # (draws, n, baselines, runs)
    picks = np.take_along_axis(picks, runs[:, None, None, :], axis=3)
    bases = shared.baselines[:, runs].transpose(1, 0, 2)[:, None, :, :]  # (draws, 1, baselines, runs)
    return picks - bases


def _joint_leads(shared: SharedRuns) -> dict[str, tuple[float, float]]:
    means = _resampled_differences(shared).mean(axis=(1, 3))  # (draws, baselines)
    low, high = np.percentile(means, [2.5, 97.5], axis=0)
    return {name: (float(lo), float(hi)) for name, lo, hi in zip(shared.names, low, high, strict=True)}


def _joint_success(shared: SharedRuns, first: SearchRecord) -> tuple[float, float]:
    """The success rate's interval when verdicts share baseline runs: each draw re-tests every
    resampled search's pick against every baseline on the resampled runs (one-sided paired t,
    the largest p over baselines, at alpha / top_k: Holm's first step, exact for top_k = 1)."""
    assert first.verdict is not None
    plan = first.verdict.plan
    d = _resampled_differences(shared)
    runs = d.shape[3]
    mean, sd = d.mean(axis=3), d.std(axis=3, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / (sd / math.sqrt(runs))
    p = np.where(sd > 0, stats.t.sf(t, runs - 1), np.where(mean > 0, 0.0, 1.0))
    beats = p.max(axis=2) < plan.alpha / max(1, plan.top_k)  # (draws, searches)
    low, high = np.percentile(beats.mean(axis=1), [2.5, 97.5])
    return float(low), float(high)


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
            "the smaller total (equal search.budget is not equal compute: promotions and trainings that "
            "stop early differ between strategies)"
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
