"""What a consumer reports: its heartbeat row and its lag per assigned partition."""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaException, TopicPartition
from django.db import close_old_connections

from torghut_site.kafka.consumer.core import ConsumerCore
from torghut_site.kafka.consumer.state import TRANSIENT_DB_ERRORS
from torghut_site.services import heartbeat_record

# the package's one logger name, as before the split (log pipelines filter on it)
logger = logging.getLogger("torghut_site.kafka")


class ObservabilityMixin(ConsumerCore):
    """The reporting side of a `BatchConsumer`."""

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
