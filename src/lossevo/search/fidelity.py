"""Multi-fidelity promotion: asynchronous successive halving (ASHA, Li et al., MLSys 2020).

A candidate is first trained at rung 0 (the search's cheap surrogate, ``rungs[0]`` steps). Once
it is among the top ``1/eta`` of the results its rung has so far, it is *promoted*: trained again
at rung 1 (``rungs[1]`` steps), and so on up the ladder. There is no generation barrier: whenever
an executor slot is free the driver first looks for a promotion (highest rung first, as ASHA
does) and only then breeds a new candidate, so promotions and children share the executors.

Decisions are a function of the journal alone (which results each rung holds), so a search
killed mid-promotion resumes to the same decisions.

Promotion retrains from scratch at the longer budget rather than continuing the short run: the
warm-up + cosine schedule of a 300-step run has decayed to zero at step 300, so a continued run
would follow a schedule no final training uses, and its accuracy would not be the loss's accuracy
at that budget, which is what the next rung (and the verdict) measures. The cost is the short
run's steps again, a fraction ``rungs[r] / rungs[r + 1]`` of the promotion.

Seeds: at rung 0 each candidate initialises its model from its own seed and every loss (the
reference too) sees the rung's batch order and augmentation (``rung_seed(run, 0)``); at rung
r >= 1 every candidate *and* the reference loss train with the same seeds, so a rung compares
losses on identical initialisations, batch orders and augmentations. Shared batches are common
random numbers for the ranking, and what lets a population of candidates train in one pass.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lossevo.config.settings import FidelitySettings
from lossevo.errors import LossevoError
from lossevo.results import Status
from lossevo.store.journal import RungRow


def rung_seed(run_seed: int, rung: int) -> int:
    """The base seed every loss shares at ``rung``: batches at rung 0, batches and init above."""
    return int(np.random.SeedSequence([run_seed, 0xF1DE, rung]).generate_state(1)[0])


@dataclass
class Fidelity:
    """The rung ladder of a search: ``steps[r]`` training steps and ``runs[r]`` trainings at rung r."""

    steps: list[int]
    runs: list[int]
    eta: float = 3.0
    single: bool = True  # one rung on the surrogate's own steps: no override, today's search
    base_steps: int = 0  # the search's own surrogate.steps

    @classmethod
    def from_settings(cls, settings: FidelitySettings, surrogate_steps: int) -> Fidelity:
        if settings.rungs is None or len(settings.rungs) == 0:
            steps, single = [int(surrogate_steps)], True
        else:
            steps, single = [int(s) for s in settings.rungs], False
        runs = [1] * len(steps) if settings.runs is None else [int(r) for r in settings.runs]
        example = "e.g. search.fidelity.rungs=[300,1200,4800] search.fidelity.runs=[1,1,3]"
        if len(runs) != len(steps):
            raise LossevoError(
                f"search.fidelity.runs has {len(runs)} entries for {len(steps)} rungs; give one per rung, "
                + example
            )
        if any(s < 1 for s in steps) or any(b <= a for a, b in itertools.pairwise(steps)):
            raise LossevoError(f"search.fidelity.rungs must be increasing step counts >= 1, {example}")
        if any(r < 1 for r in runs):
            raise LossevoError(f"search.fidelity.runs must be >= 1 per rung, {example}")
        if not settings.eta > 1:
            raise LossevoError(f"search.fidelity.eta must be > 1 (promote the top 1/eta), got {settings.eta}")
        return cls(steps, runs, float(settings.eta), single and runs == [1], int(surrogate_steps))

    @property
    def top(self) -> int:
        return len(self.steps) - 1

    def overrides(self, rung: int) -> list[str]:
        """Config overrides of a training at ``rung`` (none where the surrogate's own steps apply)."""
        if self.single or (rung == 0 and self.steps[0] == self.base_steps):
            return []
        return [f"surrogate.steps={self.steps[rung]}"]

    def promotion(
        self, rungs: Sequence[RungRow], group: dict[int, str] | None = None
    ) -> tuple[int, int] | None:
        """The next ``(candidate, rung)`` to train, or None: ASHA's rule, highest rung first.

        A candidate finished at rung r is promotable when it trained (status done) and is among the
        best ``floor(n / eta)`` of the ``n`` finished results of rung r (failures count in ``n``
        and rank last), and has no row at rung r + 1 yet. ``group`` maps candidates to the setting
        they were trained on at rung 0 (a pre-screen): rung 0 ranks within each group."""
        present = {(r.candidate_id, r.rung) for r in rungs}
        for rung in range(self.top - 1, -1, -1):
            finished = [r for r in rungs if r.rung == rung and r.status in (Status.DONE, Status.FAILED)]
            pools: dict[str, list[RungRow]] = {}
            for row in finished:
                label = group.get(row.candidate_id, "") if (group and rung == 0) else ""
                pools.setdefault(label, []).append(row)
            best: list[RungRow] = []
            for pool in pools.values():
                k = math.floor(len(pool) / self.eta + 1e-9)
                ranked = sorted(
                    (r for r in pool if r.status == Status.DONE and r.fitness is not None),
                    key=lambda r: (-(r.fitness or 0.0), r.candidate_id),
                )
                best += [r for r in ranked[:k] if (r.candidate_id, rung + 1) not in present]
            if best:
                chosen = min(best, key=lambda r: (-(r.fitness or 0.0), r.candidate_id))
                return chosen.candidate_id, rung + 1
        return None
