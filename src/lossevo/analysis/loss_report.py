"""Looking at a loss, and at the augmentations: what ``report.py show=loss|augmentations`` writes.

``show=loss``: the loss's binary phenotype and gradient next to the compared losses, its 2-class
surface (PNGs) and its equation (``equation.md``: text, LaTeX, key and generated source).
``show=augmentations``: one batch of a dataset under each augmentation technique (MH-AUG, Figure 2).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from lossevo.config import build, compose_config
from lossevo.errors import LossevoError
from lossevo.losses import build_loss


def describe_loss(name: str, loss: Any) -> str:
    """The equation of a loss (its LaTeX and key when it is a genome) and its source, as Markdown."""
    lines = [f"# {name}", "", f"    {getattr(loss, 'equation', type(loss).__name__)}", ""]
    genome = getattr(loss, "genome", None)
    if genome is not None:
        lines += [
            f"$${genome.latex()}$$",
            "",
            f"space: {genome.space}, sign: {genome.sign:+d}, key: {genome.key()}",
            "",
        ]
    with contextlib.suppress(AttributeError, LossevoError):  # a loss without a standalone source
        lines += ["```python", loss.source().rstrip(), "```", ""]  # as `lossevo export` writes it
    return "\n".join(lines)


def write_loss_report(cfg: DictConfig, folder: Path) -> tuple[list[Path], str]:
    """The PNGs and ``equation.md`` of ``cfg.loss`` next to ``cfg.compare``; returns them and the text."""
    from lossevo.analysis import plots
    from lossevo.losses import get_loss
    from lossevo.tracking.tracker import Tracker

    loss = build_loss(cfg.loss, "loss")
    name = str(cfg.loss.get("name") or getattr(loss, "name", "loss"))
    drawn = {name: loss}
    for other in cfg.get("compare") or []:
        if other != name:
            drawn[str(other)] = get_loss(str(other))
    paths = [
        plots.plot_phenotypes(drawn, folder / "phenotype.png"),
        plots.plot_gradients(drawn, folder / "gradient.png"),
        plots.plot_surface(name, loss, folder / "surface.png"),
    ]
    text = describe_loss(name, loss)
    (folder / "equation.md").write_text(text)
    tracker = Tracker(cfg.get("logger"), folder, group="report", job_type="report", name=f"report-{name}")
    try:
        tracker.images({p.stem: p for p in paths})
        tracker.summary({"loss": name, "equation": getattr(loss, "equation", name)})
    finally:
        tracker.finish()
    return paths, text


def write_augmentation_report(cfg: DictConfig, folder: Path) -> Path:
    """``augmentations.png``: ``cfg.images`` images of ``cfg.dataset`` under each of ``cfg.techniques``."""
    from lossevo.analysis import plots
    from lossevo.data import load_dataset
    from lossevo.data.augment import AugmentRNG

    data = load_dataset(cfg.dataset)
    count = int(cfg.images)
    images = data.train_x[:count].float() / 255
    labels = data.train_y[:count]
    columns = {"original": images}
    for technique in cfg.get("techniques") or []:
        composed = compose_config("evolve", [f"augment={technique}"])
        composed.dataset = cfg.dataset  # the augment node reads the dataset's padding and flip
        pipeline = build(composed.augment, "augment", num_classes=data.num_classes)
        columns[str(technique)], _ = pipeline(images.clone(), labels.clone(), AugmentRNG(int(cfg.seed)))
    return plots.plot_augmentations(columns, folder / "augmentations.png")
