"""The bridge's producer side: every update stays unconfirmed until Kafka's delivery report; a
refused update is counted and the lane reconciled; a fatal producer error replaces the producer
and produces the unconfirmed updates again (see the package docstring)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message

from orderfeed.bridge.backoff import backoff_seconds
from orderfeed.bridge.config import trade_update_envelope
from orderfeed.bridge.core import BridgeCore
from orderfeed.bridge.errors import fatal_kafka_error
from orderfeed.bridge.metrics import (
    BRIDGE_PRODUCE_ERRORS,
    BRIDGE_PRODUCER_FATAL_ERRORS,
    BRIDGE_UPDATES,
)
from torghut_site.kafka.clients import kafka_producer, producer_release

# the package's one logger name, as before the split (log pipelines and tests filter on it)
logger = logging.getLogger("orderfeed.bridge")


class ProducerMixin(BridgeCore):
    """Trade updates onto the topic, and the producer's health."""

    # -- updates -----------------------------------------------------------------------------------
    def _produce(self, data: dict[str, Any]) -> None:
        order = data.get("order")
        symbol = str(order.get("symbol") or "") if isinstance(order, dict) else ""
        value = json.dumps(trade_update_envelope(data=data, account_label=self.lane.label))
        key = next(self._ids)
        self._unconfirmed[key] = (symbol, value.encode())
        if not self._send(key):
            return
        self.stats.updates += 1
        BRIDGE_UPDATES.labels(account=self.lane.label).inc()
        if self.max_updates is not None and self.stats.updates >= self.max_updates:
            self.stop()

    def _send(self, key: int) -> bool:
        """Hand an unconfirmed update to the producer. False when it cannot be queued (then it is
        dropped, counted, and the lane will be reconciled); True when queued, or kept for the
        next producer because this one is dead."""
        if self._fatal is not None:
            return True  # kept: the next producer sends it
        entry = self._unconfirmed.get(key)
        if entry is None:
            return True  # confirmed meanwhile (a re-send that made room with a poll)
        symbol, value = entry
        failure: Exception
        try:
            try:
                self._produce_one(key, symbol, value)
            except BufferError:
                # the local queue is full (Kafka unreachable for a long time): make room, once
                self._serve(self._producer.poll, 1.0)
                if self._fatal is not None:
                    return True
                self._produce_one(key, symbol, value)
        except KafkaException as exc:
            fatal = fatal_kafka_error(exc)
            if fatal is not None:
                self._on_fatal(fatal)
                return True
            failure = exc
        except BufferError as exc:
            failure = exc
        else:
            return True
        del self._unconfirmed[key]
        self._count_produce_errors(1)
        self._reconcile_needed = "update not queued"
        logger.error(
            "trade update could not be queued for Kafka",
            extra={"account": self.lane.label, "symbol": symbol, "error": str(failure)},
        )
        return False

    def _produce_one(self, key: int, symbol: str, value: bytes) -> None:
        self._producer.produce(
            self.topic,
            key=symbol.encode() if symbol else None,
            value=value,
            on_delivery=partial(self._on_delivery, self._generation, key),
        )

    def _on_delivery(self, generation: int, key: int, err: KafkaError | None, msg: Message) -> None:
        """A delivery report, served by `poll`/`flush` on the thread that calls them. An error is
        only noted here: whether the update is lost or goes to the next producer depends on a
        fatal error, which may surface in the same call (see `_settle_failures`)."""
        if generation != self._generation:
            return  # from a replaced producer: its unconfirmed updates were produced again
        if err is not None:
            self._failed.append((key, err))
            return
        self._fatal_streak = 0
        if self._unconfirmed.pop(key, None) is not None:
            self.stats.delivered += 1

    # -- the producer's state ----------------------------------------------------------------------
    def _serve_producer(self) -> None:
        """On the event loop, after every frame and at least every POLL_SECONDS: serve delivery
        reports, replace a dead producer, queue a reconciliation when one is needed."""
        self._serve(self._producer.poll, 0)
        self._recover_if_fatal()
        self._reconcile_if_needed()

    def _serve(self, call: Callable[[float], int], timeout: float) -> None:
        """`poll` or `flush` the producer; a fatal error it raises marks the producer dead.

        So does a SystemError without a fatal error behind it: confluent-kafka 2.16's `flush()`
        loses the fatal error it met and raises "returned NULL without setting an exception"
        (observed after OUT_OF_ORDER_SEQUENCE_NUMBER). A producer whose client code is in that
        state is not trusted either; replacing it costs at most duplicates."""
        try:
            call(timeout)
        except (KafkaException, SystemError) as exc:
            fatal = fatal_kafka_error(exc)
            if fatal is None and not isinstance(exc, SystemError):
                raise
            self._on_fatal(fatal or exc)
        self._settle_failures()

    def _settle_failures(self) -> None:
        """Delivery errors after a poll: with a dead producer the updates wait for the next one;
        otherwise they are lost to Kafka (counted; the lane will be reconciled)."""
        failed, self._failed = self._failed, []
        for _, error in failed:
            if error.fatal() or error.code() == KafkaError._FATAL:
                self._on_fatal(error)
        if self._fatal is not None:
            return
        for key, error in failed:
            if self._unconfirmed.pop(key, None) is None:
                continue
            self._count_produce_errors(1)
            self._reconcile_needed = "update not delivered"
            logger.error(
                "trade update not delivered to Kafka",
                extra={"account": self.lane.label, "topic": self.topic, "error": str(error)},
            )

    def _on_fatal(self, error: KafkaError | BaseException) -> None:
        if self._fatal is not None:
            return  # this producer's fatal error is known already
        self._fatal = error
        self.stats.producer_fatal_errors += 1
        BRIDGE_PRODUCER_FATAL_ERRORS.labels(account=self.lane.label).inc()
        logger.error(
            "Kafka producer failed fatally: replacing it and producing its unconfirmed updates "
            "again",
            extra={
                "account": self.lane.label,
                "topic": self.topic,
                "error": str(error),
                "unconfirmed": len(self._unconfirmed),
                "fatal_errors": self.stats.producer_fatal_errors,
            },
        )

    def _recover_if_fatal(self, *, force: bool = False) -> None:
        """Replace a dead producer — at once the first time, after the backoff when the last new
        one died before delivering anything — and produce the unconfirmed updates on the new one.
        """
        if self._fatal is None:
            return
        now = time.monotonic()
        if not force and now < self._replace_not_before:
            return
        self._fatal_streak += 1
        self._replace_not_before = now + backoff_seconds(
            self._fatal_streak, minimum=self.backoff_min_seconds, maximum=self.backoff_max_seconds
        )
        dead = self._producer
        self._generation += 1
        self._failed.clear()
        self._fatal = None
        try:
            # local only: drop what it holds (its reports now belong to a replaced generation),
            # then end its threads
            dead.purge(in_queue=True, in_flight=True, blocking=False)
            dead.poll(0)
        except (KafkaException, SystemError) as exc:
            logger.warning(
                "could not purge the failed producer",
                extra={"account": self.lane.label, "error": str(exc)},
            )
        try:
            dead.close()
        except (KafkaException, SystemError, RuntimeError) as exc:
            logger.warning(
                "could not close the failed producer",
                extra={"account": self.lane.label, "error": str(exc)},
            )
        self._producer = kafka_producer(self._kafka_config)
        unconfirmed = list(self._unconfirmed)
        resent = sum(self._send(key) for key in unconfirmed)
        self.stats.resent += resent
        self._reconcile_needed = "producer replaced"
        logger.info(
            "Kafka producer replaced",
            extra={"account": self.lane.label, "resent": resent, "unconfirmed": len(unconfirmed)},
        )

    def _count_produce_errors(self, n: int) -> None:
        self.stats.produce_errors += n
        BRIDGE_PRODUCE_ERRORS.labels(account=self.lane.label).inc(n)

    def _reconcile_if_needed(self) -> None:
        """An update that never reached Kafka is lost to the consumer: reconcile the lane."""
        if self._reconcile_needed:
            reason, self._reconcile_needed = self._reconcile_needed, ""
            self._in_worker(partial(self._reconcile, reason))

    def _release_producer(self) -> None:
        """Close the producer (what it still held is counted above): its librdkafka threads end
        with the bridge instead of reconnecting for as long as the bridge object lives."""
        try:
            producer_release(self._producer, 0)
        except (KafkaException, SystemError, RuntimeError) as exc:
            logger.warning(
                "could not close the producer",
                extra={"account": self.lane.label, "error": str(exc)},
            )
