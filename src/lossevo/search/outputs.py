"""What a finished search leaves behind: its best losses as configs, the verdict's files, and the
tables and summary on W&B.

``conf/loss/best_<k>.yaml`` are the ``top_k`` losses, ordered by the verdict when there is one
(else by the highest rung reached and the result there), each a loss config ``train.py`` accepts
with the label smoothing the search trained with, so a found loss trains as it was evaluated;
``export/best_<k>.py`` the same losses as files that need only torch (:mod:`lossevo.export`). With
W&B on, all of them and the verdict's files are one ``loss`` artifact (:mod:`lossevo.tracking.artifacts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from lossevo.config.settings import SearchSettings
from lossevo.export import export_search
from lossevo.genome import genome_from_dict
from lossevo.losses import build_loss, genome_loss_config
from lossevo.results import FINISHED, Status
from lossevo.store.journal import CandidateRow, Journal, ReferenceRow
from lossevo.store.owned_files import OwnedFiles
from lossevo.tracking.artifacts import log_losses
from lossevo.tracking.tracker import Tracker
from lossevo.verdict.files import track_verdict, verdict_metadata, write_verdict
from lossevo.verdict.plan import Finalist, finalists
from lossevo.verdict.rows import Verdict

# Candidate configs are written with the C dumper when PyYAML has it (a search writes thousands).
YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@dataclass
class SearchOutcome:
    run_dir: Path
    evaluated: int
    failed: int
    promotions: int
    best: list[CandidateRow]  # the written losses, best first (by the verdict when there is one)
    finalists: list[Finalist]  # the same, with the highest rung each reached and its result there
    reference: ReferenceRow | None  # the reference loss at rung 0 (the candidates' first comparison)
    top_reference: ReferenceRow | None  # and at the highest rung it trained at
    loss_configs: list[Path]
    verdict: Verdict | None = None
    files: dict[str, Path] | None = None


def write_outputs(
    run_dir: Path,
    journal: Journal,
    tracker: Tracker,
    settings: SearchSettings,
    verdict: Verdict | None,
    strategy_summary: dict[str, Any],
    reference_loss: DictConfig,
) -> SearchOutcome:
    """Write the best losses, the verdict's files and the W&B tables; the search's outcome."""
    k = settings.top_k
    chosen: list[Finalist] = []
    notes: list[str] = []
    if verdict is not None:  # the validated finalists first, by their validation mean
        cell = verdict.headline.label
        for r in verdict.finalists():
            finalist = verdict.finalist_of(r)
            if r.finished and finalist is not None and len(chosen) < k:
                chosen.append(finalist)
                notes.append(
                    f"validation {r.val_mean:.4f}, test {r.test_mean:.4f} over {r.finished} runs at {cell}"
                )
    for ranked in finalists(journal, k):  # then the search's own ranking (highest rung, result there)
        if len(chosen) < k and all(ranked.candidate_id != c.candidate_id for c in chosen):
            chosen.append(ranked)
            note = f"rung {ranked.rung} fitness {ranked.rung_fitness:.4f}"
            notes.append(note + (" (not validated)" if verdict is not None else ""))
    best = [journal.candidate(f.candidate_id) for f in chosen if f.candidate_id is not None]
    owned = OwnedFiles(run_dir, journal)
    paths = write_loss_configs(best, owned, notes, settings.label_smoothing)
    files: dict[str, Path] = {}
    if verdict is not None:
        files = write_verdict(verdict, run_dir)
        track_verdict(verdict, tracker)
    standalone = export_search(run_dir, journal, verdict, paths, owned)
    if tracker.active and paths:
        metadata = verdict_metadata(verdict) if verdict is not None else {"verdict": None}
        log_losses(tracker, run_dir, [*paths, *standalone, *files.values()], metadata)
    _track_candidates(tracker, journal)
    if tracker.active and best:  # phenotypes for the dashboard, only when anything is logged
        from lossevo.analysis.evolution_report import phenotype_files, track_top_candidates

        images = phenotype_files(
            best, settings.reference_name, build_loss(reference_loss, "loss"), run_dir / "phenotypes"
        )
        track_top_candidates(tracker, best, images)
    tracker.summary(
        {
            "best_fitness": best[0].fitness if best else None,
            "best_equation": best[0].equation if best else None,
            **{f"strategy/{k}": v for k, v in strategy_summary.items()},
        }
    )
    references = [r for r in journal.references() if r.name == settings.reference_name]
    return SearchOutcome(
        run_dir=run_dir,
        evaluated=journal.count(FINISHED),
        failed=journal.count(Status.FAILED),
        promotions=sum(1 for r in journal.rungs() if r.rung > 0),
        best=best,
        finalists=chosen,
        reference=journal.reference(settings.reference_name),
        top_reference=max(references, key=lambda r: r.rung, default=None),
        loss_configs=paths,
        verdict=verdict,
        files=files,
    )


def _track_candidates(tracker: Tracker, journal: Journal) -> None:
    columns = ["id", "parent", "phase", "status", "fitness", "stop_reason", "equation", "seconds"]
    rows = [
        [
            r.id,
            r.parent_id,
            r.phase,
            r.status.value,
            r.fitness,
            r.stop_reason and r.stop_reason.value,
            r.equation,
            r.seconds,
        ]
        for r in journal.candidates()
    ]
    tracker.table("candidates", columns, rows)
    # Every rung's result (a promotion is a row at its rung) and every verdict training.
    tracker.table(
        "rungs",
        ["candidate", "rung", "status", "fitness", "mean", "std", "stop_reason", "steps", "seconds"],
        [
            [
                r.candidate_id,
                r.rung,
                r.status.value,
                r.fitness,
                r.mean,
                r.std,
                r.stop_reason and r.stop_reason.value,
                r.steps,
                r.seconds,
            ]
            for r in journal.rungs()
        ],
    )
    tracker.table(
        "verdict_runs",
        ["loss", "setting", "steps", "run", "seed", "status", "val_acc", "test_acc", "seconds", "reused"],
        [
            [
                v.loss,
                v.setting,
                v.budget,
                v.run,
                v.seed,
                v.status.value,
                v.fitness,
                v.test_acc,
                v.seconds,
                bool(v.reused),
            ]
            for v in journal.validations()
        ],
    )


def write_loss_configs(
    best: Sequence[CandidateRow], owned: OwnedFiles, notes: Sequence[str] = (), label_smoothing: float = 0.0
) -> list[Path]:
    """Write the best genomes as loss configs ``conf/loss/best_<rank>.yaml`` that ``train.py`` accepts
    (with the label smoothing they were searched with, so they train as evaluated)."""
    paths = []
    for rank, row in enumerate(best, start=1):
        genome = genome_from_dict(row.genome)
        node = genome_loss_config(f"best_{rank}", genome, label_smoothing)
        note = notes[rank - 1] if rank - 1 < len(notes) else f"fitness {row.fitness:.4f}"
        # The equation from the genome, not the journal's text (which could hold a newline and a key).
        header = f"# Rank {rank} of the search: candidate {row.id}, {note}\n# {genome.equation()}\n"
        paths.append(
            owned.write(f"conf/loss/best_{rank}.yaml", header + OmegaConf.to_yaml(OmegaConf.create(node)))
        )
    owned.remove_stale("conf/loss", paths)  # a resumed search may now rank fewer or others
    return paths
