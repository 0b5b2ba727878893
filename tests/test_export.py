"""`lossevo export`: a loss as one file that needs only torch, equal to lossevo's own loss.

Every published loss and a few hundred random valid genomes of each space are exported, then
imported in a fresh interpreter where ``import lossevo`` fails; their values and gradients (float64;
class indices, probabilities, label smoothing, extra dimensions) must equal lossevo's within 1e-12.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from lossevo.errors import LossevoError
from lossevo.export import ExportedLoss, class_name, export, module_text, resolve
from lossevo.genome import GraphSpace, TaylorSpace, TreeGenome, TreeSpace
from lossevo.losses import available_losses, get_loss
from lossevo.losses.base import GenomeLoss, Loss

from .conftest import ROOT

GENOMES_PER_SPACE = 200
SPACES = {
    "graph": GraphSpace(),
    "tree-glo": TreeSpace(primitives="glo", init_min_height=1, init_max_height=4, logits=True),
    "tree-ngl": TreeSpace(primitives="ngl"),
    "taylor": TaylorSpace(sigma=3.0),
}
# (label smoothing, targets): hard class indices, probabilities (mixup-like), and [B, C, d] logits.
CASES = (("hard", 0.0), ("soft", 0.0), ("hard", 0.1), ("soft", 0.2), ("spatial", 0.0))
OPTIONS = {"taylorglo": {"params": [0.3, 0.6, -1.2, 0.4, -0.7, 0.9, 0.2, -0.5]}}


def random_genomes(space: str, count: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for j in itertools.count():
        if len(out) == count:
            break
        genome = SPACES[space].random(rng)
        if genome.structure_problem() is not None:
            continue
        if isinstance(genome, TreeGenome) and j % 2:  # half of the trees with CMA-ES coefficients
            genome = genome.with_coefficients(rng.normal(1.0, 0.5, len(genome.coefficients())))
        out.append(genome.with_sign(int(rng.choice([-1, 1]))))
    return out


def inputs(seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(12, 10, generator=g, dtype=torch.float64) * 3
    hard = torch.randint(0, 10, (12,), generator=g)
    e = -torch.log(torch.rand(12, 10, generator=g, dtype=torch.float64))
    soft = e / e.sum(1, keepdim=True)
    spatial = torch.randn(4, 10, 3, generator=g, dtype=torch.float64)
    return {
        "hard": (logits, hard),
        "soft": (logits, soft),
        "spatial": (spatial, torch.randint(0, 10, (4, 3))),
    }


def lossevo_outputs(loss: Loss, data: dict) -> dict[str, list[torch.Tensor]]:
    out = {}
    for kind, smoothing in CASES:
        logits, target = data[kind]
        loss.reduction, loss.label_smoothing = "none", smoothing
        x = logits.clone().requires_grad_(True)
        values = loss(x, target)
        (grad,) = torch.autograd.grad(values.sum(), x)
        out[f"{kind}-{smoothing}"] = [values.detach(), grad]
    return out


# Runs in a fresh interpreter: lossevo must not be importable, only the exported files.
FRESH = textwrap.dedent(
    """
    import importlib, json, sys
    sys.modules["lossevo"] = None  # `import lossevo` raises ImportError from here on
    folder = sys.argv[1]
    sys.path.insert(0, folder)
    import torch
    try:
        import lossevo  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("lossevo is importable")
    manifest = json.load(open(folder + "/manifest.json"))
    data = torch.load(folder + "/inputs.pt")
    out = {}
    for module, cls, cases in manifest:
        Loss = getattr(importlib.import_module(module), cls)
        for kind, smoothing in cases:
            logits, target = data[kind]
            x = logits.clone().requires_grad_(True)
            values = Loss(reduction="none", label_smoothing=smoothing)(x, target)
            (grad,) = torch.autograd.grad(values.sum(), x)
            out[f"{module}/{kind}-{smoothing}"] = [values.detach(), grad]
    torch.save(out, folder + "/outputs.pt")
    print(len(out), "cases;", len(manifest), "files")
    """
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, dict[str, dict[str, list[torch.Tensor]]]]:
    """Every published loss and GENOMES_PER_SPACE random genomes per space, written as files."""
    folder = tmp_path_factory.mktemp("exported")
    data = inputs()
    torch.save(data, folder / "inputs.pt")
    losses: dict[str, Loss] = {}
    for name in available_losses():
        losses[f"published_{name}"] = get_loss(name, **OPTIONS.get(name, {}))
    for i, space in enumerate(SPACES):
        for j, genome in enumerate(random_genomes(space, GENOMES_PER_SPACE, seed=i)):
            losses[f"{space.replace('-', '_')}_{j}"] = GenomeLoss(genome)
    manifest, expected = [], {}
    for module, loss in losses.items():
        text = module_text(ExportedLoss(module, loss, ["a test"]), module=module)
        (folder / f"{module}.py").write_text(text)
        manifest.append([module, class_name(module), list(CASES)])
        expected[module] = lossevo_outputs(loss, data)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder, expected


def test_every_published_loss_and_random_genomes_equal_lossevos_in_a_fresh_interpreter(exported) -> None:
    folder, expected = exported
    published = [m for m in expected if m.startswith("published_")]
    assert len(published) == len(available_losses()) >= 20
    for space in SPACES:
        assert sum(m.startswith(space.replace("-", "_") + "_") for m in expected) == GENOMES_PER_SPACE
    result = subprocess.run(
        [sys.executable, "-I", "-c", FRESH, str(folder)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=folder,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    got = torch.load(folder / "outputs.pt")
    assert len(got) == len(expected) * len(CASES)
    finite = 0
    for module, cases in expected.items():
        for case, (values, grad) in cases.items():
            their_values, their_grad = got[f"{module}/{case}"]
            where = f"{module} {case}"
            close = {"rtol": 1e-12, "atol": 1e-12, "equal_nan": True}
            torch.testing.assert_close(their_values, values, **close, msg=lambda m, w=where: f"{w}: {m}")
            torch.testing.assert_close(their_grad, grad, **close, msg=lambda m, w=where: f"{w} gradient: {m}")
            finite += bool(torch.isfinite(values).all() and torch.isfinite(grad).all())
    assert finite > 0.8 * len(got)  # the comparison is mostly between numbers, not NaNs


def test_exported_files_pass_ruff(exported) -> None:
    folder, expected = exported
    files = sorted(str(p) for p in folder.glob("*.py"))
    assert len(files) == len(expected)
    ruff = Path(sys.executable).with_name("ruff")
    # pycodestyle, pyflakes and bugbear; an equation is one docstring line however long (E501).
    result = subprocess.run(
        [str(ruff), "check", "--isolated", "--select", "E,F,W,B", "--ignore", "E501", *files],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:]


def test_the_file_documents_the_loss_and_is_a_cross_entropy_drop_in(tmp_path: Path) -> None:
    path = export("baikal_cma", tmp_path / "baikal.py")
    text = path.read_text()
    assert "L = -(1/n) Σ_c" in text and r"\mathcal{L}" in text and "'baikal_cma'" in text
    assert "import lossevo" not in text and "from lossevo" not in text
    namespace: dict = {}
    exec(compile(text, str(path), "exec"), namespace)
    criterion = namespace["BaikalCmaLoss"]()
    logits, target = torch.randn(6, 10, requires_grad=True), torch.randint(0, 10, (6,))
    value = criterion(logits, target)
    assert value.shape == () and torch.isfinite(value)
    with pytest.raises(ValueError, match="target must have shape"):
        criterion(logits, torch.randint(0, 10, (5,)))
    with pytest.raises(ValueError, match="reduction"):
        namespace["BaikalCmaLoss"](reduction="avg")
    half = criterion(logits.detach().half(), target)
    assert half.dtype == torch.float32  # half precision logits are computed in float32, like lossevo


def test_a_loss_option_such_as_the_verdicts_baseline_exports_with_its_settings(tmp_path: Path) -> None:
    text = export("cross_entropy_ls", tmp_path / "ce_ls.py").read_text()
    assert "label_smoothing: float = 0.1" in text and "loss=cross_entropy_ls" in text
    namespace: dict = {}
    exec(text, namespace)
    logits, target = torch.randn(5, 10, dtype=torch.float64), torch.randint(0, 10, (5,))
    expected = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(logits, target)
    value = namespace["CrossEntropyLsLoss"]()(logits, target)  # as torch's own, smoothing included
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "genome",
    [
        {
            "space": "graph",
            "sign": 1,
            "root": {"op": "__import__('os').getcwd", "inputs": ["y"]},
            "hidden": [{"op": "neg", "inputs": ["y"]}] * 4,
        },
        {
            "space": "graph",
            "sign": 1,
            "root": {"op": "add", "inputs": ["y", "yhat); import os; (y"]},
            "hidden": [{"op": "neg", "inputs": ["y"]}] * 4,
        },
        {
            "space": "tree",
            "primitives": "ngl",
            "sign": 1,
            "tree": {"op": "add", "args": [{"leaf": "y"}, {"const": "1); import os; (1"}]},
        },
        {
            "space": "tree",
            "primitives": "ngl",
            "sign": 1,
            "tree": {"op": "add", "args": [{"leaf": "y"}, {"leaf": "yhat", "coef": "2 * __import__('os')"}]},
        },
    ],
)
def test_a_genome_file_cannot_put_code_into_the_exported_file(genome: dict, tmp_path: Path) -> None:
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(genome))
    with pytest.raises(
        LossevoError, match=r"evil\.json.*(unknown op|neither an input|must be a number|not a plain name)"
    ):
        export(path, tmp_path / "evil.py")
    assert not (tmp_path / "evil.py").exists()


def test_bad_targets_are_one_clear_message(tmp_path: Path) -> None:
    with pytest.raises(LossevoError, match=r"has no best_3\.yaml"):
        resolve(tmp_path, best=3)
    with pytest.raises(LossevoError, match="unknown loss"):
        resolve("neuroloss9")
    with pytest.raises(LossevoError, match="not a Python class name"):
        export("neuroloss1", tmp_path / "x.py", name="my-loss")
    with pytest.raises(LossevoError, match="--param applies to a named loss"):
        resolve(str(ROOT / "pyproject.toml"), options={"epsilon": 2})


@pytest.mark.slow
def test_an_exported_loss_runs_under_torch_compile(tmp_path: Path) -> None:
    path = export("neuroloss1", tmp_path / "found.py")
    script = textwrap.dedent(
        """
        import sys
        sys.modules["lossevo"] = None
        sys.path.insert(0, sys.argv[1])
        import torch
        from found import Neuroloss1Loss
        torch.manual_seed(0)
        logits, target = torch.randn(32, 10, requires_grad=True), torch.randint(0, 10, (32,))
        eager = Neuroloss1Loss()(logits, target)
        (eager_grad,) = torch.autograd.grad(eager, logits)
        compiled = torch.compile(Neuroloss1Loss())(logits, target)
        (compiled_grad,) = torch.autograd.grad(compiled, logits)
        torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(compiled_grad, eager_grad, rtol=1e-5, atol=1e-6)
        print("compiled", float(compiled))
        """
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", script, str(path.parent)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "compiled" in result.stdout
