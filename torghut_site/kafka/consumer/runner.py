"""The `BatchConsumer` loop (poll, hand over, store offsets, report), its rebalance callbacks and
its shutdown, and the one factory `consumer_build`."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from torghut_site.kafka.clients import producer_release
from torghut_site.kafka.config import consumer_settings_from
from torghut_site.kafka.consumer.batches import BatchMixin
from torghut_site.kafka.consumer.observability import ObservabilityMixin
from torghut_site.kafka.consumer.polling import PollingMixin
from torghut_site.kafka.consumer.state import (
    Ahead,
    ConsumerMetrics,
    ConsumerStats,
    Preparation,
    StopRequested,
)
from torghut_site.kafka.messages import BatchHandler, PreparingHandler

# the package's one logger name, as before the split (log pipelines filter on it)
logger = logging.getLogger("torghut_site.kafka")


class BatchConsumer(PollingMixin, BatchMixin, ObservabilityMixin):
    """Runs `handler` over the topics until stopped (SIGTERM/SIGINT, `stop()`, or idle exit)."""

    def run(self) -> ConsumerStats:
        s = self.settings
        config = s.consumer_config()
        consumer = self._consumer_factory(config)
        self._cooperative = "cooperative" in str(config.get("partition.assignment.strategy", ""))
        try:
            ready = self._topics_wait(consumer)
        except BaseException:
            consumer.close()
            raise
        if not ready:  # stopped while Kafka was still unreachable
            consumer.close()
            return self.stats
        self._consumer = consumer
        if isinstance(self.handler, PreparingHandler):
            self._preparation = Preparation(
                ThreadPoolExecutor(1, thread_name_prefix=f"{s.name}-prepare"), self.handler
            )
        consumer.subscribe(list(s.topics), on_assign=self._on_assign, on_revoke=self._on_revoke)
        logger.info(
            "consumer started",
            extra={"consumer": s.name, "topics": list(s.topics), "group": s.group_id},
        )
        self._heartbeat(force=True)
        idle_since = time.monotonic()
        try:
            while not self._stop:
                batch = self._accept(self._poll_batch(consumer))
                if batch or not self._assigned:
                    # idleness counts from the moment partitions are ours (group join takes time)
                    idle_since = time.monotonic()
                preparation = self._preparation
                if preparation is None:
                    if batch:
                        self._process(batch)
                else:
                    # this batch is prepared on the helper thread while the one ahead of it
                    # goes to the database
                    ahead = self._ahead
                    self._ahead = (
                        Ahead(
                            batch, preparation.pool.submit(preparation.handler.prepare_batch, batch)
                        )
                        if batch
                        else None
                    )
                    if ahead is not None:
                        self._process(ahead.batch, ahead.prepared)
                if (
                    not batch
                    and self._ahead is None
                    and self.idle_exit_seconds is not None
                    and time.monotonic() - idle_since >= self.idle_exit_seconds
                ):
                    logger.info("consumer idle, exiting", extra={"consumer": s.name})
                    break
                if self.max_messages is not None and self.stats.messages >= self.max_messages:
                    break
                self._heartbeat()
                self._report_lag()
            self._process_ahead()
        except StopRequested:
            pass
        finally:
            self._shutdown()
        return self.stats

    def _shutdown(self) -> None:
        # a batch still held ahead here was not handled (an outage stopped the process): its
        # offsets are not stored, so the partition's next owner gets it again
        self._ahead = None
        consumer = self._consumer
        if consumer is not None:
            self._report_lag(force=True)
            try:
                consumer.commit(asynchronous=False)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError._NO_OFFSET:
                    logger.warning("final offset commit failed", extra={"error": str(exc)})
            consumer.close()
        if self._preparation is not None:
            self._preparation.pool.shutdown(wait=True, cancel_futures=True)
            self._preparation = None
        if self._producer is not None:
            producer, self._producer = self._producer, None
            producer_release(producer, 10)
        self._heartbeat(force=True, state="stopped")
        logger.info(
            "consumer stopped",
            extra={"consumer": self.settings.name, "messages": self.stats.messages},
        )

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned.update((p.topic, p.partition) for p in partitions)
        logger.info(
            "partitions assigned",
            extra={"consumer": self.settings.name, "partitions": _names(partitions)},
        )
        if partitions:
            self._starts.assign(consumer, partitions, cooperative=self._cooperative)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # the batch held ahead is handled while its partitions are still ours; every handled
        # batch has stored its offsets: commit them before the partitions move
        self._process_ahead()
        try:
            consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                logger.warning("commit on revoke failed", extra={"error": str(exc)})
        for p in partitions:
            self._assigned.discard((p.topic, p.partition))
            if self.metrics.lag is not None:
                self.metrics.lag.labels(topic=p.topic, partition=str(p.partition)).set(0)
        logger.info(
            "partitions revoked",
            extra={"consumer": self.settings.name, "partitions": _names(partitions)},
        )


def _names(partitions: list[TopicPartition]) -> list[str]:
    return [f"{p.topic}[{p.partition}]" for p in partitions]


def consumer_build(
    prefix: str,
    *,
    handler: BatchHandler,
    metrics: ConsumerMetrics,
    idle_exit_seconds: float | None = None,
    max_messages: int | None = None,
    **settings_kwargs: Any,
) -> BatchConsumer:
    """The one consumer factory (order feed, TA signals, whitepaper intake): a `BatchConsumer`
    running `handler` on the settings `consumer_settings_from(prefix, **settings_kwargs)` reads."""
    return BatchConsumer(
        consumer_settings_from(prefix, **settings_kwargs),
        handler,
        metrics,
        idle_exit_seconds=idle_exit_seconds,
        max_messages=max_messages,
    )
