"""Analyses of losses and runs: studies, rank correlation, elimination, reports, plots, statistics."""
