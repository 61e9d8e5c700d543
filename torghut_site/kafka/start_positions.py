"""Where a consumer's assigned partitions start, chosen by us instead of librdkafka's silent
`auto.offset.reset` (`BatchConsumer`'s assignment callback): the group's committed offset; for a
partition without one, where the handler's own state says (`StartingHandler`), else the earliest
retained record; `latest` only when an operator configured it (warned). Each choice is logged
and counted (`torghut_kafka_consumer_start_position_total`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_STORED,
    Consumer,
    KafkaException,
    TopicPartition,
)
from prometheus_client import Counter

from torghut_site.kafka.config import ConsumerSettings
from torghut_site.kafka.messages import BatchHandler, StartingHandler

# the consumer's logger (log pipelines filter on it)
logger = logging.getLogger("torghut_site.kafka")

KAFKA_START_POSITIONS = Counter(
    "torghut_kafka_consumer_start_position_total",
    "Where assigned partitions started, by reason: committed (the group's offset), own_state "
    "(the handler's database), earliest, configured_latest (an operator's *_AUTO_OFFSET_RESET="
    "latest), configured_error, unknown (committed offsets unreadable: auto.offset.reset decides).",
    ["consumer", "reason"],
)
# how long the assignment callback waits for the group's committed offsets and a partition's
# watermarks before it leaves the choice to auto.offset.reset
START_LOOKUP_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class StartPositions:
    settings: ConsumerSettings
    handler: BatchHandler

    def assign(
        self, consumer: Consumer, partitions: list[TopicPartition], *, cooperative: bool
    ) -> None:
        """Choose each assigned partition's start here instead of leaving it to librdkafka's
        auto.offset.reset, which decides silently: the group's committed offset; for a partition
        without one, where the handler's own state says (`StartingHandler`), else the earliest
        retained record — `latest` only when an operator configured it (warned). Each choice is
        logged and counted; the offsets are then assigned (incrementally under the cooperative
        protocol, the library assigns nothing more after this)."""
        try:
            committed = consumer.committed(partitions, timeout=START_LOOKUP_TIMEOUT_SECONDS)
        except KafkaException as exc:
            logger.warning(
                "committed offsets unreadable; auto.offset.reset decides where to start",
                extra={"consumer": self.settings.name, "error": str(exc)},
            )
            KAFKA_START_POSITIONS.labels(consumer=self.settings.name, reason="unknown").inc(
                len(partitions)
            )
            return
        starts: dict[tuple[str, int], tuple[int, str]] = {}
        fresh: list[tuple[str, int]] = []
        for tp in committed:
            key = (tp.topic, tp.partition)
            if tp.error is None and tp.offset >= 0:
                starts[key] = (tp.offset, "committed")
            else:
                fresh.append(key)
        if fresh:
            starts.update(self._fresh(consumer, fresh))
        for p in partitions:
            offset, reason = starts[(p.topic, p.partition)]
            p.offset = offset
            KAFKA_START_POSITIONS.labels(consumer=self.settings.name, reason=reason).inc()
            log = logger.warning if reason.startswith("configured") else logger.info
            log(
                "partition start position",
                extra={
                    "consumer": self.settings.name,
                    "topic": p.topic,
                    "partition": p.partition,
                    "offset": _offset_name(offset),
                    "reason": reason,
                },
            )
        if cooperative:
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)

    def _fresh(
        self, consumer: Consumer, fresh: list[tuple[str, int]]
    ) -> dict[tuple[str, int], tuple[int, str]]:
        """Starts of the partitions the group has no committed offset for."""
        reset = self.settings.auto_offset_reset
        if reset == "latest":
            # an operator's explicit choice, honoured: what is in the log now is skipped
            return {key: (OFFSET_END, "configured_latest") for key in fresh}
        if reset == "error":
            # librdkafka raises the missing offset as a consumer error
            return {key: (OFFSET_STORED, "configured_error") for key in fresh}
        starts = {key: (OFFSET_BEGINNING, "earliest") for key in fresh}
        if not (self.settings.start_from_own_state and isinstance(self.handler, StartingHandler)):
            return starts
        try:
            own = self.handler.start_offsets(fresh)
        except Exception as exc:  # noqa: BLE001 - the earliest record is always a safe start
            logger.warning(
                "handler start offsets unavailable; starting at the earliest record",
                extra={"consumer": self.settings.name, "error": f"{type(exc).__name__}: {exc}"},
            )
            return starts
        for key, offset in own.items():
            if key in starts:
                starts[key] = self._own_state(consumer, key, offset)
        return starts

    def _own_state(self, consumer: Consumer, key: tuple[str, int], offset: int) -> tuple[int, str]:
        """The handler's offset, checked against the log: past its end (the topic was recreated,
        the handler's state belongs to another log), the earliest record instead."""
        try:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(*key), timeout=START_LOOKUP_TIMEOUT_SECONDS, cached=False
            )
        except KafkaException as exc:
            logger.warning(
                "watermarks unreadable; starting at the earliest record",
                extra={
                    "consumer": self.settings.name,
                    "partition": f"{key[0]}[{key[1]}]",
                    "error": str(exc),
                },
            )
            return (OFFSET_BEGINNING, "earliest")
        if offset > high:
            logger.warning(
                "the handler's state is past the end of the log (a recreated topic?); "
                "starting at the earliest record",
                extra={
                    "consumer": self.settings.name,
                    "partition": f"{key[0]}[{key[1]}]",
                    "state_offset": offset,
                    "high_watermark": high,
                },
            )
            return (OFFSET_BEGINNING, "earliest")
        return (max(offset, low), "own_state")


def _offset_name(offset: int) -> int | str:
    return {OFFSET_BEGINNING: "earliest", OFFSET_END: "latest", OFFSET_STORED: "stored"}.get(
        offset, offset
    )
