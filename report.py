"""Look at a loss: python report.py loss=a2 [compare=[cross_entropy,neuroloss1]]

Writes PNGs of its binary phenotype, gradient and 2-class surface, and its equation, to the run
folder. See conf/report.yaml.
"""

import hydra
from omegaconf import DictConfig

from lossevo.cli import run_report, user_errors


@hydra.main(config_path="conf", config_name="report", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> None:
    run_report(cfg)


if __name__ == "__main__":
    main()
