"""Run databases: the SQLite base, a search's journal, a run's identity."""
