"""Successive elimination of losses: python eliminate.py [protocol=...] losses.run=<search folder>

Each stage trains the survivors of the last under its own overrides and keeps its best; resumable.
See conf/eliminate.yaml and conf/protocol/.
"""

import hydra
from omegaconf import DictConfig

from lossevo.cli import run_eliminate, user_errors


@hydra.main(config_path="conf", config_name="eliminate", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> None:
    run_eliminate(cfg)


if __name__ == "__main__":
    main()
