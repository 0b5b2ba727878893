"""What a run shows while and after it runs: W&B tracking, the dashboard, the progress bar."""
