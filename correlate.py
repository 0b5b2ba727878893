"""Rank correlation of losses across settings: python correlate.py losses.random=40

Trains the losses under every setting (resumable), then writes Kendall τ tables, clusters,
scatter plots and a heatmap; with target=<setting>, recommends the cheapest surrogate whose
ranking agrees with it. See conf/correlate.yaml.
"""

import hydra
from omegaconf import DictConfig

from lossevo.cli import run_correlate, user_errors


@hydra.main(config_path="conf", config_name="correlate", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> None:
    run_correlate(cfg)


if __name__ == "__main__":
    main()
