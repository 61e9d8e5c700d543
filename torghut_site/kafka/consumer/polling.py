"""Getting a batch: the topic check at start, the wait for the first record (with the idle pause),
and the Kafka errors a poll returns."""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from torghut_site.kafka import topics
from torghut_site.kafka.consumer.core import ConsumerCore
from torghut_site.kafka.consumer.state import (
    IDLE_FETCH_WINDOW_MIN_SECONDS,
    IDLE_PAUSE_FIRST_SECONDS,
)
from torghut_site.kafka.messages import RawMessage
from torghut_site.kafka.topics import TopicMissing, topics_require

# the package's one logger name, as before the split (log pipelines filter on it)
logger = logging.getLogger("torghut_site.kafka")


class PollingMixin(ConsumerCore):
    """The poll side of a `BatchConsumer`."""

    def _topics_wait(self, consumer: Consumer) -> bool:
        """Check that the topics exist before subscribing: a missing topic stops the consumer,
        naming it (`TopicMissing`; nothing creates it behind our back); an unreachable Kafka is
        waited for with backoff, as a running consumer waits through an outage. False when a
        stop came first."""
        s = self.settings
        delay = s.retry_backoff_seconds
        while True:
            try:
                topics_require(
                    consumer,
                    [*s.topics, s.dlq_topic],
                    bootstrap_servers=s.bootstrap_servers,
                    user=f"consumer {s.name}",
                    timeout=topics.TOPIC_CHECK_TIMEOUT_SECONDS,
                )
                return True
            except TopicMissing:
                raise
            except KafkaException as exc:
                self.metrics.errors.inc()
                logger.warning(
                    "Kafka unreachable at start; waiting",
                    extra={"consumer": s.name, "error": str(exc), "delay": delay},
                )
            if self._stop:
                return False
            time.sleep(delay)
            delay = min(delay * 2, s.retry_backoff_max_seconds)

    def _poll_batch(self, consumer: Consumer) -> list[Message]:
        """Wait up to poll_ms for the first record, then take what is already fetched.

        Under load batches fill up to batch_size; under light load a record is handled as soon
        as it arrives instead of waiting for a full batch (end-to-end latency stays low). With a
        batch held ahead, nothing is waited for: that batch goes to the database now.
        """
        size = self.settings.batch_size
        held = len(self._ahead.batch) if self._ahead is not None else 0
        if self.max_messages is not None:
            size = min(size, self.max_messages - self.stats.messages - held)
            if size <= 0:
                return []
        first = consumer.poll(0) if held else self._wait_first(consumer)
        if first is None:
            return []
        if size == 1:
            return [first]
        return [first, *consumer.consume(num_messages=size - 1, timeout=0)]

    def _wait_first(self, consumer: Consumer) -> Message | None:
        """Wait up to poll_ms for a record; once idle, pause the partitions between short fetch
        windows instead, each pause twice the last up to `idle_pause_ms`."""
        pause = self._idle_pause
        first = (
            consumer.poll(self.settings.poll_ms / 1000)
            if not pause
            else self._paused_wait(consumer, pause)
        )
        if first is None and self._assigned and self.settings.idle_pause_ms:
            longest = self.settings.idle_pause_ms / 1000
            self._idle_pause = min(max(pause * 2, IDLE_PAUSE_FIRST_SECONDS), longest)
        else:
            self._idle_pause = 0.0
        return first

    def _paused_wait(self, consumer: Consumer, pause: float) -> Message | None:
        """Poll (callbacks, rebalances, errors) with the partitions paused, then fetch again for
        a short window. Pausing drops nothing: a paused partition resumes at its position, and a
        record polled meanwhile is returned."""
        consumer.pause(consumer.assignment())
        try:
            first = consumer.poll(pause)
        finally:
            assignment = consumer.assignment()
            consumer.resume(assignment)
        if first is not None or not assignment:
            return first
        return consumer.poll(self._wake_fetcher(consumer, assignment))

    def _wake_fetcher(self, consumer: Consumer, assignment: list[TopicPartition]) -> float:
        """librdkafka's broker thread puts a resumed partition back on its fetch list only when
        it next wakes (about once a second while idle): a watermark query to a partition's
        leader wakes it now (one partition per window, in turn). Returns the fetch window: three
        of that query's round trips, IDLE_FETCH_WINDOW_MIN_SECONDS at least."""
        tp = assignment[self._wake_turn % len(assignment)]
        self._wake_turn += 1
        started = time.monotonic()
        try:
            consumer.get_watermark_offsets(
                TopicPartition(tp.topic, tp.partition), timeout=1.0, cached=False
            )
        except KafkaException:
            pass  # the broker thread still wakes within its second
        return max(IDLE_FETCH_WINDOW_MIN_SECONDS, 3 * (time.monotonic() - started))

    # -- one batch --------------------------------------------------------------------------------
    def _accept(self, polled: list[Message]) -> list[RawMessage]:
        batch: list[RawMessage] = []
        for message in polled:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                self.metrics.errors.inc()
                logger.warning(
                    "kafka error", extra={"consumer": self.settings.name, "error": str(error)}
                )
                if error.fatal():
                    raise KafkaException(error)
                continue
            batch.append(RawMessage.from_kafka(message))
        return batch
