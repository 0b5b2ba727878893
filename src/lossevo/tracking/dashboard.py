"""A W&B workspace for a search or a study: ``lossevo dashboard <run folder or W&B group>``.

Built with W&B's ``wandb-workspaces`` library from what lossevo logs: fitness over evaluations
with the reference loss, the candidate tables (every candidate's equation; the best ones'
phenotypes, logged when a search ends and by ``report.py run=``), the Kendall-τ heatmap and
tables of studies, and a search's verdict. Online (an API key
for ``WANDB_BASE_URL``'s server) the workspace is saved to W&B and its URL printed; offline its
definition is written as JSON next to the run (``dashboard.json``), to save later or to read.
"""

from __future__ import annotations

import json
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from lossevo.config import resolved
from lossevo.errors import LossevoError
from lossevo.tracking.artifacts import artifact_name
from lossevo.tracking.tracker import group_for, resolve_mode


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


def target_from(where: str, project: str | None = None, entity: str | None = None) -> DashboardTarget:
    """A run folder (its logger settings and files decide the sections), or a W&B group name."""
    folder = Path(where).expanduser()
    if not folder.is_dir():
        if "/" in where or where.startswith("."):
            raise LossevoError(
                f"{where} is not a run folder; give a search or study folder, or a W&B group name"
            )
        return DashboardTarget(where, project or "lossevo", entity or os.environ.get("WANDB_ENTITY", ""),
                               True, True, None, None)  # fmt: skip
    search = (folder / "journal.sqlite").is_file()
    study = (folder / "study.sqlite").is_file()
    if not (search or study):
        raise LossevoError(f"{folder} holds no journal.sqlite or study.sqlite: not a search or study folder")
    logger: dict[str, Any] = {}
    saved = folder / ".hydra" / "config.yaml"
    if saved.is_file():
        logger = dict(resolved(OmegaConf.load(saved)).get("logger") or {})
    verdict = folder / "verdict.md"
    return DashboardTarget(
        group=group_for(folder),  # the group every tracker of this folder logs under
        project=project or logger.get("project") or "lossevo",
        entity=entity or logger.get("entity") or os.environ.get("WANDB_ENTITY", ""),
        search=search,
        study=study,
        verdict=verdict.read_text() if verdict.is_file() else None,
        folder=folder,
    )


def build_workspace(target: DashboardTarget) -> Any:
    """The workspace: one section per thing lossevo logged for ``target``, its runs filtered to the group."""
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws

    sections = []
    if target.search:
        sections.append(ws.Section(name="Search", is_open=True, panels=[
            wr.LinePlot(title="fitness over evaluations (reference loss for comparison)", x="candidate/id",
                        y=["candidate/fitness", "search/best_fitness", "search/reference_fitness"]),
            wr.LinePlot(title="seconds per candidate", x="candidate/id", y=["candidate/seconds"]),
        ]))  # fmt: skip
        sections.append(ws.Section(name="Candidates", is_open=True, panels=[
            wr.MarkdownPanel(markdown=losses_note(target)),
            wr.WeavePanelSummaryTable(table_name="candidates"),
            wr.WeavePanelSummaryTable(table_name="top_candidates"),
            wr.MediaBrowser(title="phenotypes and fitness (report.py run=<folder>)",
                            media_keys=["phenotypes", "fitness"]),
        ]))  # fmt: skip
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
        sections.append(ws.Section(name="Rank correlation", is_open=True, panels=[
            wr.MediaBrowser(title="Kendall τ between settings", media_keys=["kendall", "scatter"]),
            wr.WeavePanelSummaryTable(table_name="kendall"),
            wr.WeavePanelSummaryTable(table_name="accuracy"),
            wr.WeavePanelSummaryTable(table_name="elimination"),
        ]))  # fmt: skip
    return ws.Workspace(
        entity=target.entity,
        project=target.project,
        name=workspace_name(target.group),
        sections=sections,
        runset_settings=ws.RunsetSettings(filters=[ws.Metric("Group") == target.group]),
    )


def losses_note(target: DashboardTarget) -> str:
    """Where the search's best losses are: its ``loss`` artifact, and how to train or export one."""
    name = artifact_name(target.group)
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
