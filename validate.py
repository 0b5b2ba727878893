"""The verdict of a search: python validate.py run=<search folder> [runs=5] [top_k=3]

Retrains the search's finalists and its reference loss with fresh seeds in the search's own
folder and writes verdict.md and validation.csv there. See conf/validate.yaml.
"""

from lossevo.cli.apps import validate

if __name__ == "__main__":
    validate()
