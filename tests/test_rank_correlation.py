"""Kendall τ tables, best-K intersections, clustering and surrogate calibration (MH-AUG §3)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kendalltau

from lossevo.analysis import rank_correlation as rc

NAN = float("nan")


def test_tau_skips_losses_that_failed_in_either_setting() -> None:
    a = np.array([0.9, 0.8, NAN, 0.6, 0.5])
    b = np.array([0.7, 0.9, 0.8, NAN, 0.1])
    tau = rc.kendall(a, b)
    assert tau.n == 3 and tau.tau == pytest.approx(kendalltau([0.9, 0.8, 0.5], [0.7, 0.9, 0.1]).statistic)
    assert np.isnan(rc.kendall(np.array([0.1, NAN]), np.array([0.2, 0.3])).tau)


def test_best_k_intersection_is_what_table_3_reports() -> None:
    # Settings agree on the best five losses but disagree below them.
    a = np.array([0.90, 0.88, 0.85, 0.83, 0.80, 0.40, 0.30, 0.20, 0.15, 0.10])
    b = np.array([0.91, 0.89, 0.86, 0.84, 0.81, 0.05, 0.10, 0.20, 0.25, 0.30])
    full = rc.kendall_matrix(np.stack([a, b], axis=1))
    top = rc.kendall_matrix(np.stack([a, b], axis=1), k=5)
    assert top[0][1].tau == pytest.approx(1.0) and top[0][1].n == 5
    assert full[0][1].tau < top[0][1].tau and full[0][1].n == 10
    assert rc.top_k(np.array([0.1, NAN, 0.5, 0.3]), 2) == {2, 3}


def test_no_tau_is_shown_over_fewer_than_five_losses() -> None:
    acc = np.array([[0.9, 0.8], [0.5, 0.6], [0.1, 0.2], [0.3, 0.35]])
    tau = rc.kendall_matrix(acc)[0][1]
    assert np.isnan(tau.tau) and tau.n == 4 and rc.tau_cell(tau) == "n/a (n=4)"


def test_clusters_separate_obvious_groups_and_mark_failures() -> None:
    acc = np.array([[0.9, 0.88], [0.91, 0.9], [0.2, 0.25], [0.22, 0.2], [0.5, NAN]])
    labels = rc.cluster_losses(acc, 2)
    assert labels[0] == labels[1] != labels[2] == labels[3] and labels[4] == 0


def test_calibration_recommends_the_cheapest_surrogate_that_transfers() -> None:
    rng = np.random.default_rng(0)
    full = rng.random(30)
    good_cheap = full + 0.01 * rng.standard_normal(30)  # nearly the same ranking
    noise = rng.random(30)  # a surrogate that does not transfer, even cheaper
    better_but_costly = full.copy()
    acc = np.stack([full, good_cheap, noise, better_but_costly], axis=1)
    names = ["full", "small", "tiny", "medium"]
    out = rc.calibrate(acc, names, [100.0, 5.0, 1.0, 50.0], target="full", threshold=0.5)
    assert out.setting == "small"
    assert [r.setting for r in out.rows] == ["tiny", "small", "medium"] and out.rows[0].clears is False
    assert rc.calibrate(acc[:, [0, 2]], ["full", "tiny"], [100.0, 1.0], "full", 0.9).setting is None
    # The recommendation comes with its τ's bootstrap interval, which holds the τ itself.
    chosen = out.chosen
    assert chosen is not None and chosen.agreement.low <= chosen.agreement.tau.tau <= chosen.agreement.high
    assert rc.recommendation_line(out).startswith("small (τ ") and "over 30 losses" in rc.recommendation_line(
        out
    )


def test_markdown_table_puts_best_k_below_the_diagonal() -> None:
    acc = np.array([[0.9, 0.8], [0.5, 0.6], [0.1, 0.2], [0.7, 0.75], [0.3, 0.35], [0.2, 0.1]])
    text = rc.tau_markdown(["a", "b"], rc.kendall_matrix(acc), rc.kendall_matrix(acc, 5), 5)
    assert "| a | — | 0.867 (n=6) |" in text and "| b | n/a (n=4) | — |" in text  # best-5 share 4 losses


def test_settings_are_augmentations_or_named_override_sets() -> None:
    from omegaconf import OmegaConf

    from lossevo.analysis.study import parse_settings
    from lossevo.errors import LossevoError

    node = OmegaConf.create(["base", "small: model=convnet surrogate.steps=100", {"full": "model=resnet9"}])
    assert parse_settings(node) == {
        "base": ["augment=base"],
        "small": ["model=convnet", "surrogate.steps=100"],
        "full": ["model=resnet9"],
    }
    with pytest.raises(LossevoError, match="duplicate name base"):
        parse_settings(OmegaConf.create(["base", "base: augment=cutout"]))
    with pytest.raises(LossevoError, match="needs settings"):
        parse_settings(OmegaConf.create([]))
