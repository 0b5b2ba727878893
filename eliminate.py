"""Successive elimination of losses: python eliminate.py [protocol=...] losses.run=<search folder>

Each stage trains the survivors of the last under its own overrides and keeps its best; resumable.
See conf/eliminate.yaml and conf/protocol/.
"""

from lossevo.cli.apps import eliminate

if __name__ == "__main__":
    eliminate()
