"""The loss registry and the CrossEntropyLoss-compatible contract, with values pinned by numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.special as sps
import torch
from hydra.utils import instantiate

from lossevo.errors import LossevoError
from lossevo.losses import available_losses, genome_loss, get_loss, load_loss_file
from lossevo.losses.published import GENOMES

from .conftest import CONF, compose_config

REQUIRED = ["cross_entropy", "neuroloss1", "neuroloss2", "neuroloss3", "bessel", "baikal", "ngl"]
EPS = 1e-7
TAYLOR = [0.3, -0.2, -1.5, 0.4, 0.1, -0.7, 0.25, 0.05]

LOGITS = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, -3.0], [-1.0, 4.0, 1.0], [0.0, 0.0, 0.0]])
LABELS = np.array([0, 2, 1, 1])


def _np_softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _h(y, p):
    return p / np.sqrt(1 + (p / (y + EPS)) ** 2)


def _sig(x):
    return 1 / (1 + np.exp(-x))


def _softplus(x):  # the authors' ln(|1 + e^x| + ε) = ln(e^x + (1 + ε)), written not to overflow
    return np.logaddexp(x, np.log1p(EPS))


def _ln(x):
    return np.log(np.abs(x) + EPS)


def _taylor(y, p):
    l0, l1, l2, l3, l4, l5, l6, l7 = TAYLOR
    d, e = p - l1, y - l0
    return -(l2 * d + l3 * d**2 + l4 * d**3 + l5 * e * d + l6 * e * d**2 + l7 * e**2 * d).mean(1)


def _sum(f):
    return lambda y, p, z: f(y, p).sum(1)


_C = [2.7279, 0.9863, 1.5352, -1.1135, 1.3716, -0.8411]

# Independent numpy versions of docs/methods.md §6: per-sample losses from targets y, softmax p and
# logits z, each with its authors' reduction over classes.
NUMPY = {
    "cross_entropy": _sum(lambda y, p: -y * np.log(p)),
    "neuroloss1": _sum(lambda y, p: -(_ln(_h(y, p)) + _h(y, p))),
    "neuroloss2": _sum(lambda y, p: -(np.log10(np.abs(_h(y, p)) + EPS) + np.sin(_h(y, p)))),
    "neuroloss3": _sum(lambda y, p: -(_ln(_h(y, p)) + np.minimum(y, p / (y + EPS)))),
    "bessel": _sum(lambda y, p: np.minimum(sps.i0e(p), y) + sps.i0e(p)),
    "b0": _sum(lambda y, p: -_sig(_softplus(p / (y + EPS)))),
    "b1": _sum(lambda y, p: -_sig(sps.i0e(p / (y + EPS))) * (1 - _sig(sps.i0e(p / (y + EPS))))),
    "b2": _sum(lambda y, p: -sps.i1e(sps.erf(p / (y + EPS)))),
    "c0": _sum(lambda y, p: -_ln(np.arctan(p / (y + EPS)))),
    "c1": _sum(lambda y, p: -_ln(_softplus(p / (y + EPS)))),
    "c2": _sum(lambda y, p: -_sig(np.log10(np.abs(p / (y + EPS)) + EPS))),
    "m0": _sum(lambda y, p: -sps.i1(np.arctan(np.log10(p + EPS))) * y),
    "m1": _sum(lambda y, p: _softplus(p - y)),
    "m2": _sum(lambda y, p: np.arcsinh(sps.i0(y - p))),
    "a0": _sum(lambda y, p: -_ln(1 / (1 + np.abs(np.log10(p + EPS)))) * y),
    "a1": _sum(lambda y, p: -_ln(sps.i0e(np.log10(p + EPS))) * y),
    "a2": _sum(lambda y, p: y / (sps.i0e(np.log(p + EPS)) + EPS)),
    "baikal": lambda y, p, z: -(np.log(p) - y / p).mean(1),
    "baikal_cma": lambda y, p, z: (
        -(_C[0] * (_C[1] * np.log(_C[2] * p) - _C[3] * (_C[4] * y) / (_C[5] * p))).mean(1)
    ),
    "fastlogit": lambda y, p, z: -((z - y) * (y / p - (z + 2))).mean(1),
    "ngl": lambda y, p, z: (np.exp(2.4092 - p - p * y) - np.cos(np.cos(np.sin(p)))).mean(1),
    "taylorglo": lambda y, p, z: _taylor(y, p),
    "mse": lambda y, p, z: ((p - y) ** 2).mean(1),
    "focal": _sum(lambda y, p: -y * (1 - p) ** 2 * np.log(p)),
    "poly1": lambda y, p, z: (-y * np.log(p)).sum(1) + 1.0 * (1 - (y * p).sum(1)),
    "sce": lambda y, p, z: (
        0.1 * (-y * np.log(p)).sum(1) - (np.clip(p, 1e-7, 1) * np.log(np.clip(y, 1e-4, 1))).sum(1)
    ),
}
OPTIONS = {"taylorglo": {"params": TAYLOR}}


def test_registry_has_the_required_losses() -> None:
    assert set(REQUIRED) <= set(available_losses())


def test_unknown_loss_and_option_give_clear_errors() -> None:
    with pytest.raises(LossevoError, match=r"unknown loss 'neurolos1'\. Did you mean 'neuroloss1'"):
        get_loss("neurolos1")
    with pytest.raises(LossevoError, match=r"has no option 'smoothing'.*label_smoothing"):
        get_loss("cross_entropy", smoothing=0.1)


def test_every_published_loss_has_a_numpy_reference() -> None:
    assert set(NUMPY) == set(available_losses())


@pytest.mark.parametrize("name", sorted(NUMPY))
def test_values_match_numpy(name: str) -> None:
    y = np.eye(3)[LABELS]
    per_sample = NUMPY[name](y, _np_softmax(LOGITS), LOGITS)
    loss = get_loss(name, **OPTIONS.get(name, {}))
    got = loss(torch.tensor(LOGITS, dtype=torch.float32), torch.tensor(LABELS))
    assert float(got) == pytest.approx(per_sample.mean(), rel=5e-5, abs=1e-5)
    none = get_loss(name, reduction="none", **OPTIONS.get(name, {}))(
        torch.tensor(LOGITS), torch.tensor(LABELS)
    )
    np.testing.assert_allclose(none.numpy(), per_sample, rtol=5e-5, atol=1e-5)


def test_poly1_is_cross_entropy_plus_epsilon_times_one_minus_pt() -> None:
    """Leng et al. (ICLR 2022), Eq. 2: Poly-1 = -log(p_t) + ε(1 - p_t); soft targets weight p_t by
    the target, ε(1 - Σ_c y_c p_c); label smoothing smooths the targets first."""
    logits = torch.tensor(LOGITS, dtype=torch.float64)
    p = _np_softmax(LOGITS)
    pt = p[np.arange(len(LABELS)), LABELS]
    for epsilon in (1.0, 2.5, -1.0):
        got = get_loss("poly1", epsilon=epsilon, reduction="none")(logits, torch.tensor(LABELS))
        np.testing.assert_allclose(got.numpy(), -np.log(pt) + epsilon * (1 - pt), rtol=1e-12)
    soft = np.full((len(LABELS), 3), 0.1) + 0.7 * np.eye(3)[LABELS]
    got = get_loss("poly1", reduction="none")(logits, torch.tensor(soft))
    np.testing.assert_allclose(got.numpy(), (-soft * np.log(p)).sum(1) + 1 - (soft * p).sum(1), rtol=1e-12)
    smoothed = np.eye(3)[LABELS] * 0.9 + 0.1 / 3
    got = get_loss("poly1", label_smoothing=0.1, reduction="none")(logits, torch.tensor(LABELS))
    np.testing.assert_allclose(
        got.numpy(), (-smoothed * np.log(p)).sum(1) + 1 - (smoothed * p).sum(1), rtol=1e-12
    )


def test_pinned_numbers() -> None:
    """Values computed once with numpy in float64 (docs/methods.md §6 formulas), pinned so a silent
    change of a formula or of the numpy references above shows."""
    logits, labels = torch.tensor(LOGITS, dtype=torch.float32), torch.tensor(LABELS)
    pinned = {
        "neuroloss1": 31.9076957,
        "bessel": 2.9948895,
        "ngl": 7.0360017,
        "a2": 2.3288364,
        "baikal_cma": 25.677154,
        "taylorglo": 0.64364095,
        "focal": 1.0512036,
    }
    for name, value in pinned.items():
        got = float(get_loss(name, **OPTIONS.get(name, {}))(logits, labels))
        assert got == pytest.approx(value, rel=1e-5), name


def test_cross_entropy_is_torchs_with_label_smoothing() -> None:
    logits = torch.randn(32, 10)
    labels = torch.randint(0, 10, (32,))
    for smoothing in (0.0, 0.1):
        want = torch.nn.CrossEntropyLoss(label_smoothing=smoothing)(logits, labels)
        assert torch.allclose(
            get_loss("cross_entropy", label_smoothing=smoothing)(logits, labels), want, atol=1e-6
        )


@pytest.mark.parametrize("name", sorted(NUMPY))
def test_drop_in_contract(name: str) -> None:
    torch.manual_seed(0)
    loss = get_loss(name, **OPTIONS.get(name, {}))
    logits = torch.randn(6, 4, requires_grad=True)
    labels = torch.randint(0, 4, (6,))
    one_hot = torch.nn.functional.one_hot(labels, 4).float()
    value = loss(logits, labels)
    assert value.shape == () and torch.isfinite(value)
    assert torch.allclose(value, loss(logits, one_hot), atol=1e-5), "indices and one-hot rows agree"
    soft = torch.softmax(torch.randn(6, 4), 1)  # mixup-style soft targets
    assert torch.isfinite(loss(logits, soft))
    value.backward()
    assert torch.isfinite(logits.grad).all()
    summed = get_loss(name, reduction="sum", **OPTIONS.get(name, {}))(logits, labels)
    assert torch.allclose(summed, value * 6, rtol=1e-5)
    # Extra dimensions as in CrossEntropyLoss: [B, C, H, W] logits and [B, H, W] targets.
    dense = torch.randn(2, 4, 3, 3)
    dense_labels = torch.randint(0, 4, (2, 3, 3))
    per_pixel = get_loss(name, reduction="none", **OPTIONS.get(name, {}))(dense, dense_labels)
    assert per_pixel.shape == (2, 3, 3)
    flat = get_loss(name, reduction="none", **OPTIONS.get(name, {}))(
        dense.permute(0, 2, 3, 1).reshape(-1, 4), dense_labels.reshape(-1)
    )
    assert torch.allclose(per_pixel.reshape(-1), flat)
    with pytest.raises(ValueError, match="must have shape"):
        loss(logits, labels[:3])


def test_losses_compute_in_float32_under_autocast() -> None:
    logits = torch.randn(8, 10).bfloat16()
    labels = torch.randint(0, 10, (8,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = get_loss("neuroloss1")(logits, labels)
    assert value.dtype == torch.float32


@pytest.mark.parametrize("name", sorted(NUMPY))
def test_every_loss_keeps_float64_as_cross_entropy_does(name: str) -> None:
    torch.manual_seed(1)
    logits = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 4, (6,))
    value = get_loss(name, **OPTIONS.get(name, {}))(logits, labels)
    assert value.dtype == torch.float64, "float64 logits give a float64 loss"
    (grad,) = torch.autograd.grad(value, logits)
    assert grad.dtype == torch.float64 and torch.isfinite(grad).all()
    half = get_loss(name, **OPTIONS.get(name, {}))(logits.detach().half(), labels)
    assert half.dtype == torch.float32, "half precision is upcast"


@pytest.mark.parametrize("name", sorted(NUMPY))
def test_label_smoothing_applies_to_every_loss(name: str) -> None:
    torch.manual_seed(2)
    logits = torch.randn(6, 4)
    labels = torch.randint(0, 4, (6,))
    smoothed = 0.9 * torch.nn.functional.one_hot(labels, 4).float() + 0.1 / 4
    loss = get_loss(name, label_smoothing=0.1, **OPTIONS.get(name, {}))
    plain = get_loss(name, **OPTIONS.get(name, {}))
    assert torch.allclose(loss(logits, labels), plain(logits, smoothed), atol=1e-6), "as the authors' Loss"
    assert "label smoothing 0.1" in loss.equation
    with pytest.raises(LossevoError, match=r"label_smoothing must be in \[0, 1\]"):
        get_loss(name, label_smoothing=1.5, **OPTIONS.get(name, {}))


def test_label_smoothing_from_configs_for_named_and_found_losses(tmp_path: Path) -> None:
    genome_file = tmp_path / "g.yaml"
    genome_file.write_text(__import__("yaml").safe_dump(GENOMES["bessel"].to_dict()))
    for overrides in (["loss=a2"], ["loss=file", f"loss.path={genome_file}"], ["loss=neuroloss1"]):
        cfg = compose_config("train", [*overrides, "loss.label_smoothing=0.1"])
        assert instantiate(cfg.loss).label_smoothing == 0.1


def test_genome_built_losses_are_genomes() -> None:
    for name in GENOMES:
        loss = get_loss(name)
        assert loss.genome == GENOMES[name]
        assert loss.equation == GENOMES[name].equation()


def test_every_loss_config_composes_and_builds(tmp_path: Path) -> None:
    names = sorted(p.stem for p in (CONF / "loss").glob("*.yaml"))
    genome_file = tmp_path / "g.yaml"
    genome_file.write_text(__import__("yaml").safe_dump(GENOMES["bessel"].to_dict()))
    extra = {
        "genome": [f"loss.genome={_override(GENOMES['neuroloss1'].to_dict())}"],
        "file": [f"loss.path={genome_file}"],
        "taylorglo": [f"loss.params={_override(TAYLOR)}"],
    }
    for name in names:
        cfg = compose_config("train", [f"loss={name}", *extra.get(name, [])])
        loss = instantiate(cfg.loss)
        assert torch.isfinite(loss(torch.randn(4, 10), torch.randint(0, 10, (4,))))
    assert set(available_losses()) <= set(names), "every registered loss has a config"


def _override(value) -> str:
    """A Python value in Hydra's override grammar."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_override(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_override(v) for v in value) + "]"
    return str(value)


def test_genome_loss_from_plain_data_and_file(tmp_path: Path) -> None:
    data = GENOMES["neuroloss3"].to_dict()
    assert genome_loss(data).genome == GENOMES["neuroloss3"]
    path = tmp_path / "nl3.json"
    path.write_text(__import__("json").dumps(data))
    assert load_loss_file(path).genome == GENOMES["neuroloss3"]
