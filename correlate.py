"""Rank correlation of losses across settings: python correlate.py losses.random=40

Trains the losses under every setting (resumable), then writes Kendall τ tables, clusters,
scatter plots and a heatmap; with target=<setting>, recommends the cheapest surrogate whose
ranking agrees with it. See conf/correlate.yaml.
"""

from lossevo.cli.apps import correlate

if __name__ == "__main__":
    correlate()
