"""Train one loss: python train.py loss=neuroloss1 [group=option ...] [key=value ...]

See conf/train.yaml for every knob and README.md for examples.
"""

import hydra
from omegaconf import DictConfig

from lossevo.cli import run_train, user_errors


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> None:
    run_train(cfg)


if __name__ == "__main__":
    main()
