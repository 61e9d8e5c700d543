"""admin of the Kafka trade-update consumer: filled in by its own issue (see README, "What is not here (yet)")."""
