"""Looking at a loss: phenotype, gradient and surface plots, report.py and the lossevo command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lossevo.analysis import plots
from lossevo.cli.commands import run_report
from lossevo.cli.main import main as lossevo_main
from lossevo.losses import get_loss

from .conftest import compose_config, run_script

PNG = b"\x89PNG\r\n\x1a\n"


def test_phenotype_and_gradient_of_cross_entropy() -> None:
    p, values, grad = plots.phenotype(get_loss("cross_entropy"))
    np.testing.assert_allclose(values, -np.log(p), rtol=1e-4)
    np.testing.assert_allclose(grad, -1 / p, rtol=1e-3)  # d/dp of -ln p


def test_surface_of_mse() -> None:
    t, p, values = plots.surface(get_loss("mse"))
    # 2 classes: ((p - t)² + ((1-p) - (1-t))²) / 2 = (p - t)²
    np.testing.assert_allclose(values, (p - t) ** 2, rtol=1e-4, atol=1e-7)


def test_report_writes_pngs_and_the_equation(tmp_path: Path) -> None:
    cfg = compose_config("report", ["loss=a2", "compare=[cross_entropy,neuroloss1]"])
    paths = run_report(cfg, run_dir=tmp_path)
    assert [p.name for p in paths] == ["phenotype.png", "gradient.png", "surface.png"]
    assert all(p.read_bytes().startswith(PNG) and p.stat().st_size > 10_000 for p in paths)
    text = (tmp_path / "equation.md").read_text()
    assert "L = Σ_c [y/(epsilon + i0e(log(epsilon + yhat)))]" in text
    assert r"\operatorname{i0e}" in text and "def per_sample" in text and "def _bessel_i0e(x):" in text


def test_lossevo_command_prints_losses(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert lossevo_main(["show", "baikal"]) == 0
    out = capsys.readouterr().out
    assert "L = -(1/n) Σ_c [-y/(epsilon + yhat) + log(epsilon + yhat)]" in out
    assert "integrity check: passes" in out
    assert lossevo_main(["show", "taylorglo", "--param", "params=[0,0,0,0,0,1,0,0]"]) == 0
    assert "y*yhat" in capsys.readouterr().out
    genome = tmp_path / "g.json"
    genome.write_text(
        '{"space": "graph", "hidden": [{"op": "ln", "inputs": ["yhat"]}], '
        '"root": {"op": "mul", "inputs": ["h0", "y"]}}'
    )
    assert lossevo_main(["show", str(genome)]) == 0
    assert "sign decided on the unflipped curve: -1" in capsys.readouterr().out
    assert lossevo_main(["list"]) == 0
    assert "neuroloss1" in capsys.readouterr().out
    assert lossevo_main(["show", "neurolos1"]) == 2
    assert "Did you mean 'neuroloss1'" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"space": "taylor", "params": [1, 2]}')
    assert lossevo_main(["show", str(bad)]) == 2
    assert "needs 8 parameters" in capsys.readouterr().err


@pytest.mark.slow
def test_report_cli(tmp_path: Path) -> None:
    result = run_script("report.py", "loss=neuroloss2", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "surface.png").is_file() and "wrote" in result.stdout


def test_augmentation_grid(tmp_path: Path) -> None:
    cfg = compose_config(
        "report", ["show=augmentations", "dataset=digits", "images=4", "techniques=[base,mixup,all]"]
    )
    [path] = run_report(cfg, run_dir=tmp_path)
    assert path.name == "augmentations.png" and path.read_bytes().startswith(PNG)


def test_a_spike_clips_the_raw_phenotype_axis_and_ordinary_curves_do_not() -> None:
    p, ce, _ = plots.phenotype(get_loss("cross_entropy"))
    _, mse, _ = plots.phenotype(get_loss("mse"))
    assert plots.clipped_limits([ce, mse]) is None  # -ln p's own steep end is no spike
    spike = np.where(p < 0.003, 5e6, 1 - p)  # one candidate at 5e6 near p = 0
    low, high = plots.clipped_limits([ce, mse, spike])
    assert low < 0 and ce[len(ce) // 10] < high < 20, "the other curves fill the clipped axis"


def test_heatmap_numbers_are_white_on_dark_cells_and_black_on_light_ones() -> None:
    import matplotlib.pyplot as plt

    values = np.array([[1.0, 0.05], [-0.95, np.nan]])
    fig, ax = plt.subplots()
    image = ax.imshow(values, vmin=-1, vmax=1, cmap="RdBu_r")
    texts = plots.annotate_cells(ax, image, values)
    plt.close(fig)
    assert [(t.get_text(), t.get_color()) for t in texts] == [
        ("1.00", "white"),
        ("0.05", "black"),
        ("-0.95", "white"),
    ]
