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
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, NamedTuple

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from django.db import InterfaceError, OperationalError, close_old_connections, connections
from prometheus_client import Counter, Gauge, Histogram

from torghut_site.faults import fault_point
from torghut_site.kafka import topics
from torghut_site.kafka.clients import kafka_consumer, kafka_producer, producer_release
from torghut_site.kafka.config import ConsumerSettings, consumer_settings_from, producer_config
from torghut_site.kafka.messages import (
    BatchHandler,
    DeadLetter,
    PreparingHandler,
    RawMessage,
)
from torghut_site.kafka.start_positions import StartPositions
from torghut_site.kafka.topics import TopicMissing, topics_require
from torghut_site.services import dead_letters_mark_published, dead_letters_record, heartbeat_record

# the package's one logger name, as before the split (log pipelines filter on it)
logger = logging.getLogger("torghut_site.kafka")

TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)

# Idle (a wait for the first record brought nothing), the partitions are paused for
# `idle_pause_ms` at most, doubling from IDLE_PAUSE_FIRST_SECONDS, and fetched from again between
# pauses for a window of three round trips to the broker, IDLE_FETCH_WINDOW_MIN_SECONDS at least.
# A broker that answers an empty fetch at once (noida-db ignores `fetch.wait.max.ms`) is then
# asked a few times a second instead of thousands: bench/consumer_idle.py.
IDLE_PAUSE_FIRST_SECONDS = 0.05
IDLE_FETCH_WINDOW_MIN_SECONDS = 0.01

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


class _Preparation(NamedTuple):
    """The helper thread that prepares the next batch, and the handler whose step it runs."""

    pool: ThreadPoolExecutor
    handler: PreparingHandler


class _Ahead(NamedTuple):
    """A polled batch whose preparation runs on the helper thread."""

    batch: list[RawMessage]
    prepared: Future[Any]


@dataclass(frozen=True)
class ConsumerMetrics:
    """The consumer's own series (names differ per consumer, e.g. the seed's order-feed names)."""

    messages: Counter
    errors: Counter
    lag: Gauge | None = None


@dataclass
class ConsumerStats:
    batches: int = 0
    messages: int = 0
    dead_letters: int = 0
    transient_retries: int = 0
    handler_retries: int = 0
    started_at: float = field(default_factory=time.monotonic)
    last_batch_at: float | None = None

    def as_json(self) -> dict[str, int]:
        return {
            "batches": self.batches,
            "messages": self.messages,
            "dead_letters": self.dead_letters,
            "transient_retries": self.transient_retries,
            "handler_retries": self.handler_retries,
        }


class _StopRequested(Exception):
    pass


class BatchConsumer:
    """Runs `handler` over the topics until stopped (SIGTERM/SIGINT, `stop()`, or idle exit)."""

    def __init__(
        self,
        settings: ConsumerSettings,
        handler: BatchHandler,
        metrics: ConsumerMetrics,
        *,
        idle_exit_seconds: float | None = None,
        max_messages: int | None = None,
        consumer_factory: Callable[[dict[str, Any]], Consumer] = kafka_consumer,
        producer_factory: Callable[[dict[str, Any]], Producer] = kafka_producer,
    ) -> None:
        self.settings = settings
        self.handler = handler
        self.metrics = metrics
        self.idle_exit_seconds = idle_exit_seconds
        self.max_messages = max_messages
        self._consumer_factory = consumer_factory
        self._producer_factory = producer_factory
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._stop = False
        self._last_error = ""
        self._last_heartbeat = 0.0
        self._last_lag = 0.0
        self._assigned: set[tuple[str, int]] = set()
        self._lag: dict[str, int] = {}
        self._preparation: _Preparation | None = None
        self._ahead: _Ahead | None = None
        self._cooperative = True
        self._starts = StartPositions(settings, handler)
        self._idle_pause = 0.0  # seconds the next wait pauses the partitions (0: not idle)
        self._wake_turn = 0  # the assigned partition whose leader the next idle window wakes
        self.stats = ConsumerStats()

    # -- lifecycle ------------------------------------------------------------------------------
    def stop(self, *_: object) -> None:
        self._stop = True

    def install_signal_handlers(self) -> None:
        def _handler(signum: int, frame: FrameType | None) -> None:
            logger.info("stop requested", extra={"signal": signum, "consumer": self.settings.name})
            self.stop()

        signal.signal(signal.SIGTERM, _handler)
        signal.signal(signal.SIGINT, _handler)

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
            self._preparation = _Preparation(
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
                        _Ahead(
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
        except _StopRequested:
            pass
        finally:
            self._shutdown()
        return self.stats

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

    def _process_ahead(self) -> None:
        """Handle the batch held ahead, if any (before a revoke takes its partitions, and before
        the process exits)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            self._process(ahead.batch, ahead.prepared)

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

    def _process(self, batch: list[RawMessage], prepared: Future[Any] | None = None) -> None:
        started = time.perf_counter()
        self.metrics.messages.inc(len(batch))
        letters = self._handle_with_retries(batch, prepared)
        if letters is None:
            letters = self._isolate(batch)
        if letters:
            self._retry_transient(lambda: self._persist_dead_letters(letters))
            self._publish_dead_letters(letters)
        fault_point(f"{self.settings.name}_before_store_offsets")
        self._store_offsets(batch)
        self.stats.batches += 1
        self.stats.messages += len(batch)
        self.stats.dead_letters += len(letters)
        self.stats.last_batch_at = time.monotonic()
        KAFKA_BATCHES.labels(consumer=self.settings.name).inc()
        KAFKA_BATCH_SECONDS.labels(consumer=self.settings.name).observe(
            time.perf_counter() - started
        )

    def _isolate(self, batch: list[RawMessage]) -> list[DeadLetter]:
        """The batch keeps failing: find the poison by halves, in log order. Each half is handled
        once (a half that fails is split again); a single message gets every attempt before it is
        dead-lettered with its error. One poison message in a batch of n costs ~2·log2(n)
        transactions instead of n."""
        if len(batch) == 1:
            return [DeadLetter(batch[0], "handler_error", self._last_error)]
        letters: list[DeadLetter] = []
        middle = len(batch) // 2
        for half in (batch[:middle], batch[middle:]):
            tries = self.settings.max_handler_attempts if len(half) == 1 else 1
            result = self._handle_with_retries(half, max_attempts=tries)
            letters.extend(self._isolate(half) if result is None else result)
        return letters

    def _handle_with_retries(
        self,
        batch: list[RawMessage],
        prepared: Future[Any] | None = None,
        *,
        max_attempts: int | None = None,
    ) -> list[DeadLetter] | None:
        handle: Callable[[], list[DeadLetter]] = lambda: self.handler.handle_batch(batch)  # noqa: E731
        if prepared is not None and self._preparation is not None:
            try:
                ready = prepared.result()
            except Exception as exc:  # noqa: BLE001 - the plain path prepares (and fails) again
                logger.warning(
                    "batch preparation failed",
                    extra={"consumer": self.settings.name, "error": f"{type(exc).__name__}: {exc}"},
                )
            else:
                handler = self._preparation.handler
                handle = lambda: handler.handle_prepared(batch, ready)  # noqa: E731
        most = max_attempts or self.settings.max_handler_attempts
        attempts = 0
        while True:
            try:
                letters: list[DeadLetter] = self._retry_transient(handle)
                return letters
            except _StopRequested:
                raise
            except Exception as exc:  # noqa: BLE001 - any handler error counts toward isolation
                attempts += 1
                self._last_error = f"{type(exc).__name__}: {exc}"[:2000]
                self.metrics.errors.inc()
                self.stats.handler_retries += 1
                KAFKA_RETRIES.labels(consumer=self.settings.name, kind="handler").inc()
                logger.warning(
                    "batch handler failed",
                    extra={
                        "consumer": self.settings.name,
                        "attempt": attempts,
                        "size": len(batch),
                        "error": self._last_error,
                    },
                )
                if attempts >= most:
                    return None
                time.sleep(min(self.settings.retry_backoff_seconds * attempts, 1.0))

    def _retry_transient(self, action: Callable[[], Any]) -> Any:
        """Run `action`; while the database is unreachable, wait and retry (nothing is skipped)."""
        delay = self.settings.retry_backoff_seconds
        while True:
            try:
                return action()
            except TRANSIENT_DB_ERRORS as exc:
                self.metrics.errors.inc()
                self.stats.transient_retries += 1
                KAFKA_RETRIES.labels(consumer=self.settings.name, kind="transient").inc()
                logger.warning(
                    "database unavailable; retrying the batch",
                    extra={"consumer": self.settings.name, "error": str(exc), "delay": delay},
                )
                for conn in connections.all():
                    conn.close_if_unusable_or_obsolete()
                    if conn.connection is not None and not conn.is_usable():
                        conn.close()
                close_old_connections()
                if self._stop:
                    raise _StopRequested() from exc
                time.sleep(delay)
                delay = min(delay * 2, self.settings.retry_backoff_max_seconds)

    def _persist_dead_letters(self, letters: list[DeadLetter]) -> None:

        dead_letters_record(consumer=self.settings.name, letters=letters)

    def _publish_dead_letters(self, letters: list[DeadLetter]) -> None:
        for letter in letters:
            KAFKA_DEAD_LETTERS.labels(consumer=self.settings.name, reason=letter.reason).inc()
            logger.warning(
                "message dead-lettered",
                extra={
                    "consumer": self.settings.name,
                    "topic": letter.message.topic,
                    "partition": letter.message.partition,
                    "offset": letter.message.offset,
                    "reason": letter.reason,
                    "error": letter.error[:300],
                },
            )
        if not self.settings.dlq_topic:
            return

        published: list[RawMessage] = []

        def _on_delivery(letter: DeadLetter) -> Callable[[KafkaError | None, Message], None]:
            def delivered(err: KafkaError | None, msg: Message) -> None:
                if err is None:
                    published.append(letter.message)
                else:
                    logger.warning("dead-letter publish failed", extra={"error": str(err)})

            return delivered

        try:
            producer = self._dlq_producer()
            for letter in letters:
                producer.produce(
                    self.settings.dlq_topic,
                    key=letter.message.key,
                    value=letter.message.value,
                    headers=dead_letter_headers(self.settings.name, letter),
                    on_delivery=_on_delivery(letter),
                )
            producer.flush(10)
        except (KafkaException, BufferError) as exc:
            logger.warning(
                "dead-letter topic unavailable; kept in the database", extra={"error": str(exc)}
            )
        if published:
            self._retry_transient(
                lambda: dead_letters_mark_published(consumer=self.settings.name, messages=published)
            )

    def _dlq_producer(self) -> Producer:
        if self._producer is None:
            self._producer = self._producer_factory(
                producer_config(
                    bootstrap_servers=self.settings.bootstrap_servers,
                    client_id=f"{self.settings.client_id}-dlq",
                    security=self.settings.security,
                )
            )
        return self._producer

    def _store_offsets(self, batch: list[RawMessage]) -> None:
        assert self._consumer is not None
        last: dict[tuple[str, int], int] = {}
        for message in batch:
            key = (message.topic, message.partition)
            last[key] = max(last.get(key, -1), message.offset)
        offsets = [TopicPartition(t, p, o + 1) for (t, p), o in sorted(last.items())]
        try:
            self._consumer.store_offsets(offsets=offsets)
        except KafkaException as exc:
            # the partition was revoked meanwhile; its new owner sees the batch again and dedupes
            logger.warning("storing offsets failed", extra={"error": str(exc)})

    # -- observability ----------------------------------------------------------------------------
    def _heartbeat(self, *, force: bool = False, state: str = "running") -> None:
        now = time.monotonic()
        if not force and now - self._last_heartbeat < self.settings.heartbeat_seconds:
            return
        self._last_heartbeat = now

        details = {
            "state": state,
            "consumer": self.settings.name,
            "group": self.settings.group_id,
            "group_instance_id": self.settings.group_instance_id,
            "topics": list(self.settings.topics),
            "assigned": sorted(f"{t}[{p}]" for t, p in self._assigned),
            "batches": self.stats.batches,
            "messages": self.stats.messages,
            "dead_letters": self.stats.dead_letters,
            "lag": dict(self._lag),
        }
        try:
            heartbeat_record(
                kind=self.settings.heartbeat_kind,
                name=self.settings.instance_name or None,
                interval_seconds=self.settings.heartbeat_seconds,
                details=details,
            )
        except TRANSIENT_DB_ERRORS as exc:
            logger.warning("heartbeat failed", extra={"error": str(exc)})
            close_old_connections()

    def _report_lag(self, *, force: bool = False) -> None:
        if self._consumer is None or not self._assigned:
            return
        now = time.monotonic()
        if not force and now - self._last_lag < self.settings.lag_interval_seconds:
            return
        self._last_lag = now
        self._lag = {}
        for topic, partition, lag in self.lag():
            self._lag[f"{topic}[{partition}]"] = lag
            if self.metrics.lag is not None:
                self.metrics.lag.labels(topic=topic, partition=str(partition)).set(lag)

    def lag(self) -> list[tuple[str, int, int]]:
        """(topic, partition, messages behind the high watermark) for the assigned partitions."""
        assert self._consumer is not None
        parts = [TopicPartition(t, p) for t, p in sorted(self._assigned)]
        result = []
        try:
            positions = self._consumer.position(parts)
            for tp in positions:
                _low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(tp.topic, tp.partition), cached=True
                )
                position = tp.offset if tp.offset >= 0 else high
                result.append((tp.topic, tp.partition, max(high - position, 0)))
        except KafkaException as exc:
            logger.warning("lag lookup failed", extra={"error": str(exc)})
        return result


def dead_letter_headers(consumer: str, letter: DeadLetter) -> list[tuple[str, str | bytes | None]]:
    return [
        ("x-dlq-consumer", consumer.encode()),
        ("x-dlq-reason", letter.reason.encode()),
        ("x-dlq-error", letter.error[:1000].encode("utf-8", "replace")),
        ("x-dlq-source-topic", letter.message.topic.encode()),
        ("x-dlq-source-partition", str(letter.message.partition).encode()),
        ("x-dlq-source-offset", str(letter.message.offset).encode()),
    ]


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
