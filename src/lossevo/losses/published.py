"""Published losses (REFERENCE §6), each with its authors' reduction.

Losses the graph space can express are built from genomes, so the library also exercises the
genome compiler; the others are written directly in torch. ``h`` below is
``yhat / sqrt(1 + (yhat / (y + eps))^2)``. eps = 1e-7.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lossevo.genome.graph import GraphGenome, graph
from lossevo.genome.ops import EPS
from lossevo.loss import GenomeLoss, Loss
from lossevo.losses.registry import register_loss

# Unused hidden nodes pad every published genome to the four hidden nodes of the search space,
# so a published loss can seed or join a search as it is.
_PAD = ("neg", ["y"])


def _padded(hidden: list[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    return hidden + [_PAD] * (4 - len(hidden))


_H = [("div", ["yhat", "y"]), ("norm_div", ["yhat", "h0"])]  # h0 = yhat/(y+eps), h1 = h

GENOMES: dict[str, GraphGenome] = {
    # Morgan & Hougen 2024 (seed 001): -sum[ln(|h|+eps) + h]
    "neuroloss1": graph(_padded([*_H, ("ln", ["h1"])]), ("add", ["h2", "h1"]), sign=-1),
    # -sum[log10(|h|+eps) + sin(h)]
    "neuroloss2": graph(_padded([*_H, ("log10", ["h1"]), ("sin", ["h1"])]), ("add", ["h2", "h3"]), sign=-1),
    # -sum[ln(|h|+eps) + min(y, yhat/(y+eps))]
    "neuroloss3": graph(_padded([*_H, ("ln", ["h1"]), ("min", ["y", "h0"])]), ("add", ["h2", "h3"]), sign=-1),
    # sum[min(i0e(yhat), y) + i0e(yhat)]
    "bessel": graph(_padded([("bessel_i0e", ["yhat"]), ("min", ["h0", "y"])]), ("add", ["h1", "h0"]), sign=1),
}


def _genome_factory(name: str):
    def factory(reduction: str = "mean") -> Loss:
        return GenomeLoss(GENOMES[name], reduction=reduction, name=name)

    factory.__name__ = name
    factory.__doc__ = f"{name}: {GENOMES[name].equation()} (sum over classes, batch mean)."
    return factory


for _name in GENOMES:
    register_loss(_name)(_genome_factory(_name))


class CrossEntropy(Loss):
    """``-sum_c y_c ln(yhat_c)`` via ``log_softmax`` (exact and stable), with label smoothing.

    Targets may be indices or probabilities; label smoothing mixes them with the uniform
    distribution, as ``torch.nn.CrossEntropyLoss(label_smoothing=...)`` does.
    """

    def __init__(self, label_smoothing: float = 0.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def per_sample(self, y: torch.Tensor, yhat: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        if self.label_smoothing:
            y = y * (1 - self.label_smoothing) + self.label_smoothing / y.shape[1]
        return -(y * F.log_softmax(logits, dim=1)).sum(dim=1)

    @property
    def equation(self) -> str:
        smoothing = f", label smoothing {self.label_smoothing}" if self.label_smoothing else ""
        return f"L = -Σ_c [y*log(yhat)]{smoothing}"


class Baikal(Loss):
    """Baikal (Gonzalez & Miikkulainen, GLO): ``-(1/n) sum_c [ln(yhat) - y/yhat]``.

    Mean over the n classes, batch mean. eps = 1e-7 is added inside ``ln`` and the division so
    that a softmax output that underflows to 0 in float32 gives a large finite value, not inf.
    """

    def per_sample(self, y: torch.Tensor, yhat: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return -(torch.log(yhat + EPS) - y / (yhat + EPS)).mean(dim=1)

    @property
    def equation(self) -> str:
        return "L = -(1/n) Σ_c [log(yhat) - y/yhat]"


class NGL(Loss):
    """Next Generation Loss: ``exp(alpha - yhat - yhat*y) - cos(cos(sin(yhat)))``, alpha = 2.4092.

    The authors average over batch x classes (no eps): here the mean over classes per sample,
    then the batch mean, which is the same number.
    """

    def __init__(self, alpha: float = 2.4092, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.alpha = alpha

    def per_sample(self, y: torch.Tensor, yhat: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        values = torch.exp(self.alpha - yhat - yhat * y) - torch.cos(torch.cos(torch.sin(yhat)))
        return values.mean(dim=1)

    @property
    def equation(self) -> str:
        return f"L = (1/n) Σ_c [exp({self.alpha} - yhat - yhat*y) - cos(cos(sin(yhat)))]"


@register_loss("cross_entropy")
def cross_entropy(label_smoothing: float = 0.0, reduction: str = "mean") -> Loss:
    """Cross-entropy, optionally with label smoothing (0.10 in the papers)."""
    return CrossEntropy(label_smoothing=label_smoothing, reduction=reduction)


@register_loss("baikal")
def baikal(reduction: str = "mean") -> Loss:
    """Baikal loss from GLO."""
    return Baikal(reduction=reduction)


@register_loss("ngl")
def ngl(alpha: float = 2.4092, reduction: str = "mean") -> Loss:
    """Next Generation Loss."""
    return NGL(alpha=alpha, reduction=reduction)
