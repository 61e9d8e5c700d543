"""The shared Kafka consumer (order feed, TA signals, whitepaper intake) and its one factory.

One loop, one contract, so every consumer gets the same guarantees:

1. poll a batch (`consume(num_messages=batch_size, timeout=poll_ms)`);
2. hand it to the handler, which writes everything in **one database transaction** and returns
   the messages it refuses (dead letters) — it must be idempotent, because a batch can come back;
3. persist the dead letters (unique per consumer/topic/partition/offset) and publish them to the
   dead-letter topic;
4. only then store the offsets (`enable.auto.offset.store=false`; librdkafka commits the stored
   offsets in the background and on close).

A handler that can split off a CPU-only first step (`PreparingHandler.prepare_batch`: parsing, no
database, no side effect) gets it run for the NEXT batch on a helper thread while this batch is in
the database (the thread runs Python while the main thread waits on Postgres). One batch at most is
held ahead; it is handled before the partitions are revoked and before the process exits, and its
offsets, like every batch's, are stored only after its own commit.

A crash anywhere before step 4 redelivers the batch, and the handler's dedupe makes the second
delivery a no-op: effects are exactly once although delivery is at least once.

Errors: a database outage (OperationalError/InterfaceError) is *transient* — the batch is retried
with backoff until the database is back, nothing is skipped. Any other handler error is retried
`max_handler_attempts` times; then the batch is split in halves (each handled once, a failing half
split again) down to the message that still fails after its own attempts, which is dead-lettered
with its error, so one poison message never stalls a partition. SIGTERM/SIGINT finish the current
batch, commit, and leave the group cleanly.

The package, by part (each submodule imports its siblings, never this package):

- `state`: `TRANSIENT_DB_ERRORS`, the idle-pause timings, `ConsumerMetrics`, `ConsumerStats`, the
  batch prepared ahead;
- `metrics`: the `torghut_kafka_consumer_*` / `torghut_kafka_dead_letters_total` series;
- `core`: `ConsumerCore` (settings, state, stop, signal handlers, the retry through a database
  outage);
- `polling`: `PollingMixin` (topic check, the wait for a batch, the idle pause, Kafka errors);
- `dead_letters`: `DeadLetterMixin` (store and publish refused messages), `dead_letter_headers`;
- `batches`: `BatchMixin` (one batch: attempts, isolation by halves, offsets);
- `observability`: `ObservabilityMixin` (heartbeat, lag);
- `runner`: `BatchConsumer` (the loop, rebalance callbacks, shutdown) and `consumer_build`.
"""

from torghut_site.kafka.consumer.dead_letters import dead_letter_headers
from torghut_site.kafka.consumer.metrics import (
    KAFKA_BATCH_SECONDS,
    KAFKA_BATCHES,
    KAFKA_DEAD_LETTERS,
    KAFKA_RETRIES,
)
from torghut_site.kafka.consumer.runner import BatchConsumer, consumer_build
from torghut_site.kafka.consumer.state import (
    IDLE_FETCH_WINDOW_MIN_SECONDS,
    IDLE_PAUSE_FIRST_SECONDS,
    TRANSIENT_DB_ERRORS,
    ConsumerMetrics,
    ConsumerStats,
)

__all__ = [
    "IDLE_FETCH_WINDOW_MIN_SECONDS",
    "IDLE_PAUSE_FIRST_SECONDS",
    "KAFKA_BATCHES",
    "KAFKA_BATCH_SECONDS",
    "KAFKA_DEAD_LETTERS",
    "KAFKA_RETRIES",
    "TRANSIENT_DB_ERRORS",
    "BatchConsumer",
    "ConsumerMetrics",
    "ConsumerStats",
    "consumer_build",
    "dead_letter_headers",
]
