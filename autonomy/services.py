"""services of walk-forward research, gates, ledger and promotions: filled in by its own issue (see README, "What is not here (yet)")."""
