"""What every part of a consumer shares: its settings and state (built in `ConsumerCore`), its
stop, and the retry through a database outage."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from confluent_kafka import Consumer, Producer
from django.db import close_old_connections, connections

from torghut_site.kafka.clients import kafka_consumer, kafka_producer
from torghut_site.kafka.config import ConsumerSettings
from torghut_site.kafka.consumer.metrics import KAFKA_RETRIES
from torghut_site.kafka.consumer.state import (
    TRANSIENT_DB_ERRORS,
    Ahead,
    ConsumerMetrics,
    ConsumerStats,
    Preparation,
    StopRequested,
)
from torghut_site.kafka.messages import BatchHandler
from torghut_site.kafka.start_positions import StartPositions

# the package's one logger name, as before the split (log pipelines filter on it)
logger = logging.getLogger("torghut_site.kafka")


class ConsumerCore:
    """A `BatchConsumer`'s configuration and state (every attribute is set here), its stop, and
    the retry through a database outage that its batch and dead-letter parts share."""

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
        self._preparation: Preparation | None = None
        self._ahead: Ahead | None = None
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
                    raise StopRequested() from exc
                time.sleep(delay)
                delay = min(delay * 2, self.settings.retry_backoff_max_seconds)
