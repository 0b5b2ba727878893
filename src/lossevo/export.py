"""A found loss as one standalone PyTorch file: what ``lossevo export`` writes.

The file imports only ``torch`` and holds an ``nn.Module`` with ``torch.nn.CrossEntropyLoss``'s call
(logits ``[B, C]`` or ``[B, C, d1, ...]``, class indices or probabilities, ``reduction``,
``label_smoothing``), so it drops into a training loop where lossevo is not installed. Its
per-sample function is the text lossevo itself compiles (each op's :meth:`~lossevo.genome.ops.Op.
definition` and the genome's ``source``), and its ``forward`` repeats :class:`lossevo.losses.base.
Loss`'s; tests/test_export.py checks values and gradients against lossevo's in a fresh interpreter.
The docstring carries the equation, its LaTeX, where the loss came from and, for a loss of a run
folder, the verdict's figures.

A target is a loss name (``lossevo list``), a genome or loss file (``<run>/conf/loss/best_1.yaml``),
or a run folder (with ``best``, the rank in ``best_k.yaml``).
"""

from __future__ import annotations

import ast
import builtins
import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lossevo.errors import LossevoError
from lossevo.genome.base import Genome
from lossevo.losses.base import Loss
from lossevo.store.owned_files import OwnedFiles


@dataclass
class ExportedLoss:
    """A loss and what its file says about it."""

    name: str
    loss: Loss
    origin: list[str] = field(default_factory=list)  # provenance lines
    verdict: list[str] = field(default_factory=list)  # the verdict's figures, when a run has one


def class_name(name: str) -> str:
    """``best_1`` -> ``Best1Loss``; ``neuroloss1`` -> ``Neuroloss1Loss``."""
    words = [w for w in re.split(r"[^0-9A-Za-z]+", name) if w]
    base = "".join(w[:1].upper() + w[1:] for w in words) or "Found"
    if base[0].isdigit():
        base = "Loss" + base
    return base if base.endswith("Loss") else base + "Loss"


def resolve(target: str | Path, best: int = 1, options: dict[str, Any] | None = None) -> ExportedLoss:
    """The loss ``target`` names: a registry name, a genome/loss file, or a run folder's ``best``-th."""
    from lossevo.losses import available_losses, get_loss

    text = str(target)
    path = Path(text)
    if text in available_losses():
        loss = get_loss(text, **(options or {}))
        return ExportedLoss(text, loss, [f"lossevo's published loss {text!r} (`lossevo show {text}`)"])
    option = _loss_option(text)
    if option is not None:  # a config of conf/loss/ such as cross_entropy_ls (loss=cross_entropy_ls)
        from omegaconf import OmegaConf

        from lossevo.losses import build_loss

        node = OmegaConf.merge(OmegaConf.load(option), options or {})
        return ExportedLoss(text, build_loss(node, f"loss={text}"), [f"lossevo's loss option loss={text}"])
    if options:
        raise LossevoError(f"--param applies to a named loss (`lossevo list`), not to {text!r}")
    if path.is_dir():
        loss_file = path / "conf" / "loss" / f"best_{best}.yaml"
        if not loss_file.is_file():
            written = sorted(p.name for p in (path / "conf" / "loss").glob("best_*.yaml"))
            found = f"it has {', '.join(written)}" if written else "it has no conf/loss/best_<k>.yaml"
            raise LossevoError(
                f"{text!r} has no best_{best}.yaml ({found}): name a finished search's run folder and "
                "--best k for one of its best_k losses"
            )
        return _from_file(loss_file)
    if path.suffix in (".json", ".yaml", ".yml") or path.exists():
        return _from_file(path)
    get_loss(text)  # raises the registry's error, with suggestions
    raise AssertionError("unreachable")


def export_search(
    run_dir: Path, journal: Any, verdict: Any, loss_files: list[Path], owned: OwnedFiles
) -> list[Path]:
    """``<run>/export/best_<k>.py`` for each of a finished search's ``best_<k>.yaml``."""
    paths = []
    for loss_file in loss_files:
        exported = _from_file(loss_file, search=False)
        genome: Genome = exported.loss.genome  # type: ignore[assignment]  # a GenomeLoss's
        add_search(exported, run_dir, journal, verdict, genome.key())
        paths.append(owned.write(f"export/{loss_file.stem}.py", module_text(exported, module=loss_file.stem)))
    owned.remove_stale("export", paths)  # a resumed search may now rank fewer or others
    return paths


def _loss_option(name: str) -> Path | None:
    """lossevo's ``conf/loss/<name>.yaml`` when it is a complete loss (not ``file`` or ``genome``)."""
    from importlib.resources import files

    if not re.fullmatch(r"[A-Za-z0-9_]+", name) or name in ("file", "genome"):
        return None
    path = Path(str(files("lossevo.conf") / "loss" / f"{name}.yaml"))
    return path if path.is_file() else None


def _from_file(path: Path, search: bool = True) -> ExportedLoss:
    from lossevo.genome.files import read_genome_file
    from lossevo.losses.base import GenomeLoss

    data = read_genome_file(path)
    genome, name = data.genome, path.stem
    loss = GenomeLoss(genome, name=name, label_smoothing=data.label_smoothing)
    exported = ExportedLoss(name, loss, [f"file {path}", f"space {genome.space}, genome key {genome.key()}"])
    run_dir = path.resolve().parent.parent.parent  # <run>/conf/loss/best_k.yaml
    in_run = path.parent.name == "loss" and path.parent.parent.name == "conf"
    if search and in_run and (run_dir / "journal.sqlite").is_file():
        _add_run(exported, run_dir, genome.key())
    return exported


def _add_run(exported: ExportedLoss, run_dir: Path, key: str) -> None:
    from lossevo.store.journal import Journal
    from lossevo.verdict.rows import Verdict

    with Journal(run_dir) as journal:
        add_search(exported, run_dir, journal, Verdict.load(journal), key)


def add_search(exported: ExportedLoss, run_dir: Path, journal: Any, verdict: Any, key: str) -> None:
    """Provenance (run, candidate) and the verdict's figures of the loss with genome ``key``."""
    matches = [c for c in journal.candidates() if c.key == key]
    if not matches:
        exported.origin.append(f"run {run_dir} (the genome is not among its candidates)")
        return
    ids = [c.id for c in matches]
    candidate = matches[0]
    exported.origin.append(
        f"run {run_dir}, candidate {candidate.id} ({candidate.phase}"
        + (f", parent {candidate.parent_id}" if candidate.parent_id is not None else "")
        + (f"; the same loss as candidates {', '.join(map(str, ids[1:]))}" if len(ids) > 1 else "")
        + ")"
    )
    if verdict is None:
        exported.verdict.append("The search wrote no verdict (validate.runs=0 or not reached).")
        return
    exported.verdict += _verdict_lines(verdict, set(ids))


def _verdict_lines(verdict: Any, ids: set[int]) -> list[str]:
    from lossevo.verdict.formatting import pstr
    from lossevo.verdict.sentence import confidence

    plan = verdict.plan
    lines = [f"Verdict of the search: {verdict.sentence()}.", ""]
    mine = False
    for cell in verdict.cells:
        for r in verdict.finalists(cell):
            if r.candidate is None or r.candidate not in ids:
                continue
            mine = True
            lines.append(
                f"{cell.label}: test accuracy {r.test_mean:.4f} +/- {r.test_std:.4f} over {r.finished} "
                f"of {r.runs} runs (validation {r.val_mean:.4f}); beats every baseline: "
                f"{'yes' if r.beats else 'no'} (p = {pstr(r.p_every_baseline)}, Holm {pstr(r.p_holm)})"
            )
            for c in verdict.against(r):
                lines.append(
                    f"    vs {c.baseline}: {100 * c.difference:+.2f} points, {confidence(c.level)} bounds "
                    f"[{100 * c.lower:+.2f}, {100 * c.upper:+.2f}], paired p = {pstr(c.p_paired)} over "
                    f"{c.pairs} runs"
                )
    if not mine:
        return [f"The verdict did not retrain this loss (finalists: top {plan.top_k} of the highest rung)."]
    lines += ["", f"Runs: {plan.runs} per loss with seeds shared by every loss; level {plan.alpha}."]
    return lines


def module_text(exported: ExportedLoss, name: str | None = None, module: str = "my_loss") -> str:
    """The standalone file of ``exported`` (its class called ``name``, default from the loss name;
    ``module``: the file's import name, for its usage note)."""
    from lossevo._version import __version__

    cls = name or class_name(exported.name)
    if not cls.isidentifier() or keyword.iskeyword(cls):
        raise LossevoError(f"--name {cls!r} is not a Python class name: use letters, digits and _")
    loss = exported.loss
    per_sample = loss.source("per_sample")
    genome = getattr(loss, "genome", None)
    equation = loss.equation
    doc = [
        f"{cls}: {exported.name}, a loss for image classifiers (a drop-in for torch.nn.CrossEntropyLoss).",
        "",
    ]
    doc += [f"    {equation}", ""]
    if genome is not None:
        doc += ["LaTeX:", "", f"    {genome.latex()}", ""]
        doc += ["y: the targets (one-hot, smoothed or mixed), yhat = softmax(logits), per class; batch mean."]
        if "epsilon" in equation:
            doc += ["epsilon: the ε of each op, inlined in its function below."]
        doc += [""]
    doc += ["Origin:", *(f"    {line}" for line in exported.origin), ""]
    if exported.verdict:
        doc += [*exported.verdict, ""]
    doc += [
        "Use:",
        "",
        f"    from {module} import {cls}",
        f"    criterion = {cls}()  # reduction='mean' | 'sum' | 'none', label_smoothing=...",
        "    loss = criterion(logits, target)  # target: class indices [B] or probabilities [B, C]",
        "",
        f"Written by lossevo {__version__} (`lossevo export`); needs only PyTorch.",
        "Values and gradients equal lossevo's own (float64, within 1e-12).",
    ]
    smoothing = float(getattr(loss, "label_smoothing", 0.0))
    body = _TEMPLATE.format(
        doc="\n".join(line.rstrip() for line in doc).replace('"""', "'''"),
        per_sample=per_sample.rstrip("\n"),
        cls=cls,
        smoothing=repr(smoothing),
        smoothing_note=f" (this loss was searched with {smoothing})" if smoothing else "",
    )
    taken = _module_names(body)
    if cls in taken or hasattr(builtins, cls):  # --name torch would shadow the torch module
        raise LossevoError(
            f"--name {cls!r} is a name the file already uses ({', '.join(sorted(taken)[:6])}, or a builtin): "
            f"pick another class name, e.g. {class_name(exported.name)}"
        )
    return body


def _module_names(text: str) -> set[str]:
    """Names the module binds at its top level other than through its class (imports, functions)."""
    names: set[str] = set()
    for node in ast.parse(text).body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.FunctionDef):
            names.add(node.name)
    return names


def export(
    target: str | Path,
    output: str | Path | None = None,
    best: int = 1,
    options: dict[str, Any] | None = None,
    name: str | None = None,
) -> Path:
    """Write ``target``'s standalone file to ``output`` (default ``<loss name>.py`` here)."""
    exported = resolve(target, best, options)
    path = Path(output) if output is not None else Path(f"{re.sub(r'[^0-9A-Za-z_]', '_', exported.name)}.py")
    text = module_text(exported, name, module=path.stem)
    if path.is_dir():
        raise LossevoError(f"-o {str(path)!r} is a folder: name the .py file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# The forward is Loss.forward's (lossevo/losses/base.py), with the target handling inlined.
_TEMPLATE = '''r"""{doc}
"""

import torch


{per_sample}


class {cls}(torch.nn.Module):
    """Call it as torch.nn.CrossEntropyLoss: logits [B, C] or [B, C, d1, ...]; targets as class
    indices [B, d1, ...] or probabilities of the logits' shape. Computed in float32 for half
    precision logits (autocast included), float64 for float64."""

    def __init__(self, reduction: str = "mean", label_smoothing: float = {smoothing}) -> None:
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {{reduction!r}}")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {{label_smoothing}}")
        self.reduction = reduction
        self.label_smoothing = label_smoothing  # targets mixed with the uniform distribution{smoothing_note}

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if input.dim() < 2:
            raise ValueError(f"input must be logits [B, C, ...], got shape {{tuple(input.shape)}}")
        soft = target.is_floating_point()
        batch_shape = (input.shape[0], *input.shape[2:])
        expected = tuple(input.shape) if soft else batch_shape
        if tuple(target.shape) != expected:
            raise ValueError(
                f"target must have shape {{expected}} for input {{tuple(input.shape)}}, "
                f"got {{tuple(target.shape)}}"
            )
        logits = input
        if input.dim() > 2:  # extra dimensions join the batch
            logits = input.movedim(1, -1).reshape(-1, input.shape[1])
            target = target.movedim(1, -1).reshape(-1, input.shape[1]) if soft else target.reshape(-1)
        with torch.autocast(device_type=logits.device.type, enabled=False):
            if logits.dtype in (torch.float16, torch.bfloat16) or not logits.is_floating_point():
                logits = logits.float()
            if soft:
                y = target.to(logits.dtype)
            else:
                y = torch.nn.functional.one_hot(target.long(), logits.shape[1]).to(logits.dtype)
            if self.label_smoothing:
                y = y * (1 - self.label_smoothing) + self.label_smoothing / y.shape[1]
            values = per_sample(y, torch.softmax(logits, dim=1), logits)
        if self.reduction == "mean":
            return values.mean()
        if self.reduction == "sum":
            return values.sum()
        return values.reshape(batch_shape)
'''
