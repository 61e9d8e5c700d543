"""selectors of the GitHub issue → PDF → AgentRun workflow: filled in by its own issue (see README, "What is not here (yet)")."""
