"""Published losses (docs/methods.md §6), each with its authors' reduction.

Every loss a search space can express is built from a genome, so the library also exercises the
compilers: Morgan & Hougen's losses are graph genomes (``Σ_c``), GLO's are GLO trees
(``-(1/n) Σ_c``), NGL is an NGL tree (``(1/n) Σ_c``), TaylorGLO a Taylor genome. The rest (CE,
MSE, focal, SCE) are written in torch. ``h`` below is ``yhat / sqrt(1 + (yhat / (y + ε))²)``,
ε = 1e-7, and ``log`` in MH-AUG's table is log10.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from lossevo.errors import LossevoError
from lossevo.genome.base import Genome
from lossevo.genome.graph import graph
from lossevo.genome.taylor import taylor
from lossevo.genome.tree import TreeGenome, const, leaf, op
from lossevo.losses.base import GenomeLoss, Loss
from lossevo.losses.registry import register_loss

# Unused hidden nodes pad every published graph genome to the four hidden nodes of the search
# space, so a published loss can seed or join a search as it is.
_PAD = ("neg", ["y"])


def _padded(hidden: list[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    return hidden + [_PAD] * (4 - len(hidden))


def _g(hidden: list[tuple[str, list[str]]], root: tuple[str, list[str]], sign: int) -> Genome:
    return graph(_padded(hidden), root, sign=sign)


_H = [("div", ["yhat", "y"]), ("norm_div", ["yhat", "h0"])]  # h0 = yhat/(y+ε), h1 = h
_Q = [("div", ["yhat", "y"])]  # h0 = yhat/(y+ε)
_LOG = [("log10", ["yhat"])]  # h0 = log10(yhat+ε)

_BAIKAL = op("sub", op("ln", leaf("yhat")), op("div", leaf("y"), leaf("yhat")))

GENOMES: dict[str, Genome] = {
    # Morgan & Hougen 2024 (MH-NLE).
    "neuroloss1": _g([*_H, ("ln", ["h1"])], ("add", ["h2", "h1"]), -1),  # -Σ[ln(|h|+ε) + h]
    "neuroloss2": _g([*_H, ("log10", ["h1"]), ("sin", ["h1"])], ("add", ["h2", "h3"]), -1),
    "neuroloss3": _g([*_H, ("ln", ["h1"]), ("min", ["y", "h0"])], ("add", ["h2", "h3"]), -1),
    "bessel": _g([("bessel_i0e", ["yhat"]), ("min", ["h0", "y"])], ("add", ["h1", "h0"]), 1),
    # Morgan & Hougen, augmentation paper (MH-AUG, Table 4).
    "b0": _g([*_Q, ("softplus", ["h0"])], ("sigmoid", ["h1"]), -1),  # -σ(softplus(ŷ/(y+ε)))
    "b1": _g([*_Q, ("bessel_i0e", ["h0"])], ("dsigmoid", ["h1"]), -1),  # -dσ(i0e(ŷ/(y+ε)))
    "b2": _g([*_Q, ("erf", ["h0"])], ("bessel_i1e", ["h1"]), -1),  # -i1e(erf(ŷ/(y+ε)))
    "c0": _g([*_Q, ("atan", ["h0"])], ("ln", ["h1"]), -1),  # -ln(atan(ŷ/(y+ε)))
    "c1": _g([*_Q, ("softplus", ["h0"])], ("ln", ["h1"]), -1),  # -ln(softplus(ŷ/(y+ε)))
    "c2": _g([*_Q, ("log10", ["h0"])], ("sigmoid", ["h1"]), -1),  # -σ(log(ŷ/(y+ε)))
    "m0": _g(
        [*_LOG, ("atan", ["h0"]), ("bessel_i1", ["h1"])], ("mul", ["h2", "y"]), -1
    ),  # -i1(atan(log ŷ))·y
    "m1": _g([("sub", ["yhat", "y"])], ("softplus", ["h0"]), 1),  # softplus(ŷ - y)
    "m2": _g([("sub", ["y", "yhat"]), ("bessel_i0", ["h0"])], ("asinh", ["h1"]), 1),  # asinh(i0(y - ŷ))
    "a0": _g(
        [*_LOG, ("dsoftsign", ["h0"]), ("ln", ["h1"])], ("mul", ["h2", "y"]), -1
    ),  # -ln(dsoftsign(log ŷ))·y
    "a1": _g([*_LOG, ("bessel_i0e", ["h0"]), ("ln", ["h1"])], ("mul", ["h2", "y"]), -1),  # -ln(i0e(log ŷ))·y
    # "Inverse bessel logarithm" y / i0e(ln(ŷ+ε)); the graph's division adds ε to i0e (>= 0.1 here).
    "a2": _g([("ln", ["yhat"]), ("bessel_i0e", ["h0"])], ("div", ["y", "h1"]), 1),
    # GLO (Gonzalez & Miikkulainen): -(1/n) Σ[ln ŷ - y/ŷ] and its CMA-ES-tuned coefficients.
    "baikal": TreeGenome(_BAIKAL, primitives="glo"),
    "baikal_cma": TreeGenome(_BAIKAL, primitives="glo").with_coefficients(
        [2.7279, 0.9863, 1.5352, -1.1135, 1.3716, -0.8411]
    ),
    # FastLogit (needs the logit z): -(1/n) Σ (z - y)(y/ŷ - (z + 2)).
    "fastlogit": TreeGenome(
        op(
            "mul",
            op("sub", leaf("logit"), leaf("y")),
            op("sub", op("div", leaf("y"), leaf("yhat")), op("add", leaf("logit"), const(2))),
        ),
        primitives="glo",
    ),
    # NGL: (1/n) Σ[exp(α - ŷ - ŷ·y) - cos(cos(sin ŷ))], α = 2.4092 (no ε in any of its ops).
    "ngl": TreeGenome(
        op(
            "sub",
            op("exp", op("sub", op("sub", const(2.4092), leaf("yhat")), op("mul", leaf("yhat"), leaf("y")))),
            op("cos", op("cos", op("sin", leaf("yhat")))),
        ),
        primitives="ngl",
    ),
}

_REDUCTIONS = {"graph": "sum over classes", "tree": "mean over classes", "taylor": "mean over classes"}


def _genome_factory(name: str):
    genome = GENOMES[name]

    def factory(reduction: str = "mean") -> Loss:
        return GenomeLoss(genome, reduction=reduction, name=name)

    factory.__name__ = name
    factory.__doc__ = f"{name}: {genome.equation()} ({_REDUCTIONS[genome.space]}, batch mean)."
    return factory


for _name in GENOMES:
    register_loss(_name)(_genome_factory(_name))


@register_loss("taylorglo")
def taylorglo(params: Sequence[float] | None = None, reduction: str = "mean") -> Loss:
    """TaylorGLO with parameters λ0…λ7: -(1/n) Σ_c [third-order expansion] (mean over classes)."""
    if params is None:
        raise LossevoError("loss 'taylorglo' needs params=[λ0, …, λ7] (8 numbers)")
    return GenomeLoss(taylor(list(params)), reduction=reduction, name="taylorglo")


class CrossEntropy(Loss):
    """``-Σ_c y_c ln(yhat_c)`` via ``log_softmax`` (exact and stable), with label smoothing.

    Targets may be indices or probabilities; label smoothing mixes them with the uniform
    distribution, as ``torch.nn.CrossEntropyLoss(label_smoothing=...)`` does.
    """

    def __init__(self, label_smoothing: float = 0.0, reduction: str = "mean") -> None:
        super().__init__(reduction, label_smoothing)  # the base class smooths the targets

    def per_sample(self, y: torch.Tensor, yhat: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return -(y * F.log_softmax(logits, dim=1)).sum(dim=1)

    def source(self, name: str = "per_sample") -> str:
        return (
            f"def {name}(y, yhat, logits):\n"
            "    return -(y * torch.nn.functional.log_softmax(logits, dim=1)).sum(dim=1)\n"
        )

    @property
    def equation(self) -> str:
        return "L = -Σ_c [y*log(yhat)]" + self.smoothing_note()


class MSE(Loss):
    """Mean squared error between softmax outputs and targets: ``(1/n) Σ_c (yhat - y)²`` (mean over
    classes, as ``torch.nn.MSELoss`` on probabilities; GLO and TaylorGLO compare against it)."""

    def per_sample(self, y: torch.Tensor, yhat: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return (yhat - y).square().mean(dim=1)

    def source(self, name: str = "per_sample") -> str:
        return f"def {name}(y, yhat, logits):\n    return (yhat - y).square().mean(dim=1)\n"

    @property
    def equation(self) -> str:
        return "L = (1/n) Σ_c [(yhat - y)**2]" + self.smoothing_note()


class Focal(Loss):
    """Focal loss (Lin et al. 2017): ``-Σ_c α y (1 - yhat)^γ ln(yhat)``, sum over classes."""

    def __init__(self, gamma: float = 2.0, alpha: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.gamma, self.alpha = gamma, alpha

    def per_sample(self, y: torch.Tensor, yhat: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits, dim=1)
        return -(self.alpha * y * (1 - yhat).pow(self.gamma) * log_p).sum(dim=1)

    def source(self, name: str = "per_sample") -> str:
        return (
            f"def {name}(y, yhat, logits):\n"
            "    log_p = torch.nn.functional.log_softmax(logits, dim=1)\n"
            f"    return -({self.alpha!r} * y * (1 - yhat).pow({self.gamma!r}) * log_p).sum(dim=1)\n"
        )

    @property
    def equation(self) -> str:
        return f"L = -Σ_c [{self.alpha}*y*(1 - yhat)**{self.gamma}*log(yhat)]" + self.smoothing_note()


class Poly1(Loss):
    """Poly-1 (Leng et al., *PolyLoss*, ICLR 2022, Eq. 2): cross-entropy plus ``ε (1 - p_t)``, the
    first polynomial term of its Taylor expansion in ``1 - p_t``; for soft targets ``p_t`` is the
    target-weighted probability ``Σ_c y_c yhat_c`` (the authors' code after label smoothing).
    ε = 1 by default; one coefficient is the simplest loss a found one has to beat."""

    def __init__(self, epsilon: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.epsilon = float(epsilon)

    def per_sample(self, y: torch.Tensor, yhat: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        ce = -(y * F.log_softmax(logits, dim=1)).sum(dim=1)
        return ce + self.epsilon * (1 - (y * yhat).sum(dim=1))

    def source(self, name: str = "per_sample") -> str:
        return (
            f"def {name}(y, yhat, logits):\n"
            "    ce = -(y * torch.nn.functional.log_softmax(logits, dim=1)).sum(dim=1)\n"
            f"    return ce + {self.epsilon!r} * (1 - (y * yhat).sum(dim=1))\n"
        )

    @property
    def equation(self) -> str:
        return f"L = -Σ_c [y*log(yhat)] + {self.epsilon}*(1 - Σ_c [y*yhat])" + self.smoothing_note()


class SymmetricCE(Loss):
    """Symmetric cross-entropy (Wang et al. 2019): ``α CE + β RCE`` with the reverse term
    ``RCE = -Σ_c clamp(yhat, 1e-7, 1) ln(clamp(y, 1e-4, 1))`` (log 0 clamped to ln 1e-4 = -9.2, as
    the authors' code); α = 0.1, β = 1.0 (their CIFAR-10 setting). Sum over classes."""

    def __init__(self, alpha: float = 0.1, beta: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.alpha, self.beta = alpha, beta

    def per_sample(self, y: torch.Tensor, yhat: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        ce = -(y * F.log_softmax(logits, dim=1)).sum(dim=1)
        rce = -(yhat.clamp(1e-7, 1.0) * torch.log(y.clamp(1e-4, 1.0))).sum(dim=1)
        return self.alpha * ce + self.beta * rce

    def source(self, name: str = "per_sample") -> str:
        return (
            f"def {name}(y, yhat, logits):\n"
            "    ce = -(y * torch.nn.functional.log_softmax(logits, dim=1)).sum(dim=1)\n"
            "    rce = -(yhat.clamp(1e-7, 1.0) * torch.log(y.clamp(1e-4, 1.0))).sum(dim=1)\n"
            f"    return {self.alpha!r} * ce + {self.beta!r} * rce\n"
        )

    @property
    def equation(self) -> str:
        return f"L = {self.alpha}*CE + {self.beta}*(-Σ_c [yhat*log(clamp(y, 1e-4))])" + self.smoothing_note()


@register_loss("cross_entropy")
def cross_entropy(label_smoothing: float = 0.0, reduction: str = "mean") -> Loss:
    """Cross-entropy, optionally with label smoothing (0.10 in the papers). Sum over classes."""
    return CrossEntropy(label_smoothing=label_smoothing, reduction=reduction)


@register_loss("mse")
def mse(reduction: str = "mean") -> Loss:
    """Mean squared error on softmax outputs (mean over classes)."""
    return MSE(reduction=reduction)


@register_loss("focal")
def focal(gamma: float = 2.0, alpha: float = 1.0, reduction: str = "mean") -> Loss:
    """Focal loss (sum over classes)."""
    return Focal(gamma=gamma, alpha=alpha, reduction=reduction)


@register_loss("poly1")
def poly1(epsilon: float = 1.0, reduction: str = "mean") -> Loss:
    """Poly-1: cross-entropy + ε(1 - p_t) (sum over classes)."""
    return Poly1(epsilon=epsilon, reduction=reduction)


@register_loss("sce")
def sce(alpha: float = 0.1, beta: float = 1.0, reduction: str = "mean") -> Loss:
    """Symmetric cross-entropy (sum over classes)."""
    return SymmetricCE(alpha=alpha, beta=beta, reduction=reduction)
