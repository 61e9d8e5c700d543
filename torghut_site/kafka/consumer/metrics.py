"""The shared consumer's Prometheus series, created once, here (each labelled by consumer)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

KAFKA_BATCHES = Counter(
    "torghut_kafka_consumer_batches_total", "Batches handled by a consumer.", ["consumer"]
)
KAFKA_BATCH_SECONDS = Histogram(
    "torghut_kafka_consumer_batch_seconds",
    "Time to handle one polled batch (database commit included).",
    ["consumer"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
KAFKA_DEAD_LETTERS = Counter(
    "torghut_kafka_dead_letters_total", "Messages dead-lettered, by reason.", ["consumer", "reason"]
)
KAFKA_RETRIES = Counter(
    "torghut_kafka_consumer_retries_total",
    "Batch handling retries, by kind (transient database error or handler error).",
    ["consumer", "kind"],
)
