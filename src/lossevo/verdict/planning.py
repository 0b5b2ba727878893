"""What a search's verdict will validate, decided from its settings (docs/methods.md §5).

Built when the search starts, so a bad baseline or a verdict setting that would test on other
images is refused before anything trains: ``validate.baselines`` become losses (``reference`` is
the search's own ``loss=``); ``validate.settings`` may change the model, augmentation or recipe but
never the data. When the search ends, :meth:`VerdictPlanner.plan` reads its journal for the
finalists and fixes the plan: budgets, runs, level, the seeds (kept from an earlier plan of the
same journal, so runs already trained stay paired) and the store of shared trainings.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from lossevo.config import resolved
from lossevo.config.composer import ConfigComposer
from lossevo.config.settings import SearchSettings
from lossevo.errors import LossevoError
from lossevo.losses import build_loss
from lossevo.store.journal import Journal
from lossevo.verdict.plan import (
    OWN,
    REFERENCE,
    Baseline,
    ValidationPlan,
    budgets,
    design,
    finalists,
    runs_for,
    split_change,
    validation_runs,
    verdict_seeding,
)
from lossevo.verdict.tuning import TuneGrid

AUTO = "auto"  # validate.runs: as many as the planned resolution needs
MIN_REPLICATES = 3  # reference runs it takes to estimate a spread from them


class VerdictPlanner:
    """The baselines and settings of a search's verdict, checked; its plan when the search ends."""

    def __init__(
        self,
        settings: SearchSettings,
        composer: ConfigComposer,
        reference_loss: dict[str, Any],
        sweep_root: Path | None = None,
    ) -> None:
        self.settings = settings
        self.composer = composer
        self.reference_loss = reference_loss
        self.sweep_root = sweep_root  # a multirun's root: its searches share their verdict's baselines
        self.baselines = self._baselines()
        self._refuse_leaking_settings()

    def plan(
        self, journal: Journal, top_rung_steps: int, gpu: bool, prescreened: list[int]
    ) -> ValidationPlan:
        """The best finalists against every baseline, in the search's setting and
        ``validate.settings``, at the top rung's budget unless ``validate.steps`` says otherwise
        (and four times it too on a GPU)."""
        v = self.settings.validate
        k = int(v.top_k if v.top_k is not None else self.settings.top_k)
        previous = ValidationPlan.load(journal)
        if previous is not None:  # the seeds its journalled runs were trained with; never changed
            seed = self.settings.seed if previous.seed is None else previous.seed
            shared = previous.shared
        else:
            seed, shared = verdict_seeding(v.share, v.seed, self.settings.seed, self.sweep_root)
        chosen = finalists(journal, k)
        spread, source = self._spread(journal)
        level = v.alpha / max(1, len(chosen))  # Holm's first step
        if str(v.runs) == AUTO:
            target = v.resolution / 100
            runs = runs_for(target, spread, len(self.baselines), level, v.max_runs)
        else:
            target, runs = None, validation_runs(v.runs, gpu)
        steps = budgets(v.steps, top_rung_steps, gpu)
        tuned = v.tune if v.tune is not None else gpu  # points the journal holds are not trained again
        tune = (
            TuneGrid(list(v.tune_lr), dict(v.tune_coefficients), v.tune_runs, max(steps)) if tuned else None
        )
        return ValidationPlan(
            finalists=chosen,
            baselines=self.baselines,
            steps=steps,
            settings=[OWN, *(str(s) for s in v.settings)],
            runs=runs,
            alpha=v.alpha,
            top_k=k,
            gpu=gpu,
            prescreened=prescreened,
            seed=seed,
            shared=shared,
            design=design(runs, spread, source, len(self.baselines), level, target),
            tune=tune,
        )

    def _spread(self, journal: Journal) -> tuple[float, str]:
        """The paired differences' spread to plan with: from the reference loss's rung-0 replicates
        when there are 3 or more (their accuracies' standard deviation times √2, the spread of a
        difference of two independent runs: pairing can only shrink it), else ``validate.spread``."""
        name = self.settings.reference_name
        values = [
            r.fitness
            for r in journal.references(0)
            if r.fitness is not None and (r.name == name or r.name.startswith(f"{name}#"))
        ]
        if len(values) >= MIN_REPLICATES:
            sd = float(np.std(values, ddof=1)) * math.sqrt(2)
            if sd > 0:
                return sd, f"{len(values)} runs of {name} at rung 0"
        return self.settings.validate.spread / 100, "validate.spread"

    def _baselines(self) -> list[Baseline]:
        """``validate.baselines`` as losses: ``reference`` is the search's own reference loss, any
        other name a loss option (conf/loss/, or a --config-dir's). The search's label smoothing, a
        training setting, applies to a baseline that has none of its own; duplicates count once."""
        out: list[Baseline] = []
        for option in self.settings.validate.baselines:
            if option == REFERENCE:
                name, loss = self.settings.reference_name, dict(self.reference_loss)
            else:
                name, loss = str(option), self._loss_option(str(option))
                if self.settings.label_smoothing and not loss.get("label_smoothing"):
                    loss["label_smoothing"] = self.settings.label_smoothing
            if any(b.loss == loss for b in out):
                continue
            if any(b.name == name for b in out):
                name = f"{name}_{len(out) + 1}"
            built = build_loss(OmegaConf.create(loss), f"validate.baselines ({option})")
            equation = str(getattr(built, "equation", name))
            out.append(Baseline(name, loss, equation))
        if not out:
            raise LossevoError(
                "validate.baselines is empty: name the losses a finalist must beat, e.g. "
                "validate.baselines=[reference,cross_entropy_ls,poly1]"
            )
        return out

    def _refuse_leaking_settings(self) -> None:
        """A verdict setting must test on the search's own test split: one that changes the data
        (another split seed, sizes, dataset, root or files) may hold images the search trained or
        selected on."""
        settings = [str(s) for s in self.settings.validate.settings]
        if not settings:
            return
        own = resolved(self.composer.setting().dataset)
        for setting in settings:
            changed = split_change(own, resolved(self.composer.setting(shlex.split(setting)).dataset))
            if changed:
                raise LossevoError(
                    f"validate.settings: {setting!r} changes the data ({'; '.join(changed[:3])}), so its "
                    "test images may be ones the search trained or selected on; a verdict setting may change "
                    "the model, augmentation or recipe, not the data (search on that data instead)"
                )

    def _loss_option(self, option: str) -> dict[str, Any]:
        try:
            return resolved(self.composer.loss_option(option))
        except LossevoError:
            raise
        except Exception:
            raise LossevoError(
                f"validate.baselines: {option!r} is not a loss option; use `reference` or a name from "
                "conf/loss/ (or your --config-dir's loss/), e.g. cross_entropy_ls, poly1, focal"
            ) from None
