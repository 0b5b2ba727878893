"""Search for a loss function: python evolve.py [group=option ...] [key=value ...]

See conf/evolve.yaml for every knob and README.md for examples.
"""

import hydra
from omegaconf import DictConfig

from lossevo.cli import run_evolve, user_errors


@hydra.main(config_path="conf", config_name="evolve", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> None:
    run_evolve(cfg)


if __name__ == "__main__":
    main()
