"""Handling one batch: the handler's attempts, the search for a poison message by halves, then
the dead letters and only after them the offsets."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from confluent_kafka import KafkaException, TopicPartition

from torghut_site.faults import fault_point
from torghut_site.kafka.consumer.dead_letters import DeadLetterMixin
from torghut_site.kafka.consumer.metrics import KAFKA_BATCH_SECONDS, KAFKA_BATCHES, KAFKA_RETRIES
from torghut_site.kafka.consumer.state import StopRequested
from torghut_site.kafka.messages import DeadLetter, RawMessage

# the package's one logger name, as before the split (log pipelines filter on it)
logger = logging.getLogger("torghut_site.kafka")


class BatchMixin(DeadLetterMixin):
    """The batch side of a `BatchConsumer`."""

    def _process_ahead(self) -> None:
        """Handle the batch held ahead, if any (before a revoke takes its partitions, and before
        the process exits)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            self._process(ahead.batch, ahead.prepared)

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
            except StopRequested:
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
