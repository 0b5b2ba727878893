"""The verdict of a search: finalists and baselines retrained with fresh seeds, tested."""
