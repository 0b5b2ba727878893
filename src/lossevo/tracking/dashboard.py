"""A W&B workspace for a search, a study or a sweep of searches: ``lossevo dashboard <run folder,
multirun root or W&B group>``.

Built with W&B's ``wandb-workspaces`` library from what lossevo logs: fitness over evaluations
with the reference loss, the candidate tables (every candidate's equation; the best ones'
phenotypes, logged when a search ends and by ``report.py run=``), the Kendall-τ heatmap and
tables of studies, and a search's verdict; for a multirun root, every job's runs and the
comparison of the searches (``comparison.md``, its W&B tables and anytime curves). Online (an API key
for ``WANDB_BASE_URL``'s server) the workspace is saved to W&B and its URL printed; offline its
definition is written as JSON next to the run (``dashboard.json``), to save later or to read.
"""

from __future__ import annotations

import csv
import json
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lossevo.errors import LossevoError
from lossevo.tracking.artifacts import artifact_name
from lossevo.tracking.tracker import group_for, resolve_mode, run_label, saved_logger


@dataclass(frozen=True)
class DashboardTarget:
    """What the dashboard shows: the W&B group of a run folder (or a group named directly)."""

    group: str
    project: str
    entity: str
    search: bool  # fitness over evaluations and the candidates
    study: bool  # Kendall-τ heatmaps and tables of correlate.py / eliminate.py
    verdict: str | None  # verdict.md of a search, when it has one
    folder: Path | None
    members: tuple[
        str, ...
    ] = ()  # a multirun root: its jobs' folder names (their groups before sweeps grouped)
    label: str | None = None  # the run folder's label: its ``loss`` artifact is losses-<label>
    comparison: str | None = None  # ... and its comparison.md
    compared: tuple[str, ...] = ()  # ... and the labels of the groups it compares


def target_from(where: str, project: str | None = None, entity: str | None = None) -> DashboardTarget:
    """A run folder (its logger settings and files decide the sections), or a W&B group name."""
    folder = Path(where).expanduser()
    if not folder.is_dir():
        if "/" in where or where.startswith("."):
            raise LossevoError(
                f"{where} is not a run folder; give a search or study folder, or a W&B group name"
            )
        return DashboardTarget(
            where, project or "lossevo", entity or os.environ.get("WANDB_ENTITY", ""), True, True, None, None
        )
    search = (folder / "journal.sqlite").is_file()
    study = (folder / "study.sqlite").is_file()
    jobs = sorted({p.parent for name in ("journal.sqlite", "study.sqlite") for p in folder.glob(f"*/{name}")})
    if not (search or study) and jobs:
        return _sweep_target(folder, jobs, project, entity)
    if not (search or study):
        raise LossevoError(
            f"{folder} holds no journal.sqlite or study.sqlite: not a search or study folder, nor a "
            "multirun root of them"
        )
    logger = saved_logger(folder)
    verdict = folder / "verdict.md"
    return DashboardTarget(
        group=group_for(folder),  # the group every tracker of this folder logs under
        label=run_label(folder),
        project=project or logger.get("project") or "lossevo",
        entity=entity or logger.get("entity") or os.environ.get("WANDB_ENTITY", ""),
        search=search,
        study=study,
        verdict=verdict.read_text() if verdict.is_file() else None,
        folder=folder,
    )


def _sweep_target(folder: Path, jobs: list[Path], project: str | None, entity: str | None) -> DashboardTarget:
    """A multirun root: its jobs' runs together, and the comparison of its searches when written."""
    logger = saved_logger(jobs[0])
    comparison = folder / "comparison.md"
    compared: list[str] = []
    if (folder / "comparison.csv").is_file():
        with (folder / "comparison.csv").open() as fh:
            compared = list(dict.fromkeys(row["group"] for row in csv.DictReader(fh)))
    return DashboardTarget(
        group=group_for(folder),
        project=project or logger.get("project") or "lossevo",
        entity=entity or logger.get("entity") or os.environ.get("WANDB_ENTITY", ""),
        search=any((job / "journal.sqlite").is_file() for job in jobs),
        study=any((job / "study.sqlite").is_file() for job in jobs),
        verdict=None,
        folder=folder,
        # Its jobs log in the sweep's group; sweeps run before lossevo grouped them logged one
        # group per job, named after it: those are shown too.
        members=tuple(job.resolve().name for job in jobs),
        comparison=comparison.read_text() if comparison.is_file() else None,
        compared=tuple(compared),
    )


def build_workspace(target: DashboardTarget) -> Any:
    """The workspace: one section per thing lossevo logged for ``target``, its runs filtered to the group."""
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws

    sections = []
    if target.members:
        sections.append(
            ws.Section(
                name="Comparison of searches",
                is_open=True,
                panels=[
                    wr.MarkdownPanel(
                        markdown=target.comparison or "No comparison yet: `lossevo compare <root>`."
                    ),
                    wr.LinePlot(
                        title="anytime: the pick so far (mean across seeds)",
                        x="anytime/training_steps",
                        y=[f"anytime/{label}" for label in target.compared] or ["anytime/*"],
                    ),
                    wr.MediaBrowser(title="anytime and leads", media_keys=["anytime_plot", "leads_plot"]),
                    *(
                        wr.WeavePanelSummaryTable(table_name=name)
                        for name in ("searches", "success", "leads", "contrasts", "ledger")
                    ),
                ],
            )
        )
    if target.search:
        sections.append(
            ws.Section(
                name="Search",
                is_open=True,
                panels=[
                    wr.LinePlot(
                        title="fitness over evaluations (reference loss for comparison)",
                        x="candidate/id",
                        y=["candidate/fitness", "search/best_fitness", "search/reference_fitness"],
                    ),
                    wr.LinePlot(title="seconds per candidate", x="candidate/id", y=["candidate/seconds"]),
                ],
            )
        )
        sections.append(
            ws.Section(
                name="Candidates",
                is_open=True,
                panels=[
                    wr.MarkdownPanel(markdown=losses_note(target)),
                    wr.WeavePanelSummaryTable(table_name="candidates"),
                    wr.WeavePanelSummaryTable(table_name="top_candidates"),
                    wr.MediaBrowser(
                        title="phenotypes and fitness (report.py run=<folder>)",
                        media_keys=["phenotypes", "fitness"],
                    ),
                ],
            )
        )
    if target.verdict is not None or (target.search and target.folder is None):
        panels: list[Any] = [
            wr.WeavePanelSummaryTable(table_name="validation"),
            wr.WeavePanelSummaryTable(table_name="comparisons"),
            wr.WeavePanelSummaryTable(table_name="faithfulness"),
            wr.WeavePanelSummaryTable(table_name="cost"),
        ]
        if target.verdict:
            panels.insert(0, wr.MarkdownPanel(markdown=target.verdict))
        sections.append(ws.Section(name="Verdict", is_open=True, panels=panels))
    if target.study:
        sections.append(
            ws.Section(
                name="Rank correlation",
                is_open=True,
                panels=[
                    wr.MediaBrowser(
                        title="Kendall τ between settings", media_keys=["kendall_heatmap", "scatter"]
                    ),
                    wr.WeavePanelSummaryTable(table_name="kendall"),
                    wr.WeavePanelSummaryTable(table_name="accuracy"),
                    wr.WeavePanelSummaryTable(table_name="elimination"),
                ],
            )
        )
    return ws.Workspace(
        entity=target.entity,
        project=target.project,
        name=workspace_name(target.group),
        sections=sections,
        runset_settings=ws.RunsetSettings(filters=[_runs(target)]),
    )


def _runs(target: DashboardTarget) -> Any:
    """The runs shown: the target's group, or a multirun root's and every one of its jobs'."""
    import wandb_workspaces.workspaces as ws

    if target.members:
        return ws.Metric("Group").isin([target.group, *target.members])
    return ws.Metric("Group") == target.group


def losses_note(target: DashboardTarget) -> str:
    """Where the search's best losses are: its ``loss`` artifact, and how to train or export one."""
    name = artifact_name(target.label or target.group)
    where = "/".join(p for p in (target.entity, target.project) if p)
    url = f"https://wandb.ai/{where}/artifacts/loss/{name}" if target.entity else None
    link = f"[{name}]({url})" if url else f"`{name}`"
    return (
        f"**Best losses**: artifact {link} (type `loss`: best_k.yaml, best_k.py needing only torch, "
        f"verdict.md, validation.csv).\n\n"
        f"Train one: `lossevo train loss=wandb:{where or '<entity>/<project>'}/{name}:latest` "
        f"(`/best_2` for the second); export one: `lossevo export <run folder> --best 1`."
    )


def workspace_name(group: str) -> str:
    """``lossevo <group>`` without the symbols wandb-workspaces refuses in a name (it takes ``=``,
    ``+``, ``$``, ``^`` for emoji: Unicode symbol categories), e.g. a multirun job's ``seed=0``."""
    kept = "".join("-" if unicodedata.category(c).startswith(("S", "Cs")) else c for c in group)
    return f"lossevo {kept}"


def definition(workspace: Any) -> dict[str, Any]:
    """The workspace as W&B's view JSON (what ``save()`` uploads)."""
    return json.loads(workspace._to_model().model_dump_json(by_alias=True, exclude_none=True))


def publish(target: DashboardTarget, out: Path | None = None, offline: bool = False) -> str:
    """Save the workspace to W&B (online) and return its URL, or write its definition and return the path."""
    try:
        import wandb_workspaces  # noqa: F401
    except ImportError:
        raise LossevoError(
            "lossevo dashboard needs wandb-workspaces: pip install 'lossevo[dashboard]'"
        ) from None
    online = not offline and resolve_mode("auto") == "online"
    if online and not target.entity:
        import wandb

        target = DashboardTarget(**{**target.__dict__, "entity": wandb.Api().default_entity or ""})
    workspace = build_workspace(target)
    if online:
        try:
            workspace.save()
            return str(workspace.url)
        except Exception as err:  # no network after all: keep the definition
            print(f"W&B did not take the workspace ({type(err).__name__}: {err}); writing it to a file")
    default = target.folder / "dashboard.json" if target.folder else Path(f"dashboard-{target.group}.json")
    path = out or default
    path.write_text(json.dumps(definition(workspace), indent=1) + "\n")
    return str(path)
