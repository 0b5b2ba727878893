"""Look at a loss: python report.py loss=a2 [compare=[cross_entropy,neuroloss1]]

Writes PNGs of its binary phenotype, gradient and 2-class surface, and its equation, to the run
folder. See conf/report.yaml.
"""

from lossevo.cli.apps import report

if __name__ == "__main__":
    report()
