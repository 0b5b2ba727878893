"""The verdict of a search: python validate.py run=<search folder> [runs=5] [top_k=3]

Retrains the search's finalists and its reference loss with fresh seeds in the search's own
folder and writes verdict.md and validation.csv there. See conf/validate.yaml.
"""

import hydra
from omegaconf import DictConfig

from lossevo.cli import run_validate, user_errors


@hydra.main(config_path="conf", config_name="validate", version_base="1.3")
@user_errors
def main(cfg: DictConfig) -> None:
    run_validate(cfg)


if __name__ == "__main__":
    main()
