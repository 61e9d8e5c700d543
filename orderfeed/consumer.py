"""The order-feed consumer: the shared `torghut_site.kafka.consumer.BatchConsumer` over the
trade-update topics."""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from orderfeed import metrics
from orderfeed.services import OrderFeedHandler
from torghut_site.kafka.config import (
    ConsumerNotConfigured,
    ConsumerSettings,
    consumer_settings_from,
)
from torghut_site.kafka.consumer import BatchConsumer, ConsumerMetrics, consumer_build
from torghut_site.models import HeartbeatKind


class OrderFeedNotConfigured(ConsumerNotConfigured):
    pass


# Collect the youngest generation after this many net allocations instead of 700: a 2,000-event
# batch keeps ~60,000 container objects alive until its commit, and the default threshold ran a
# collection every few dozen events (~5 µs of collector time per event, bench/profile_orderfeed.py).
GC_THRESHOLDS = (50_000, 20, 100)


def consumer_process_tune() -> None:
    """Garbage-collector settings for a long-running consumer process, once it has started:
    what start-up allocated (Django, models, settings) is frozen out of every later collection,
    and young collections run per tens of thousands of allocations."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def order_feed_topics() -> tuple[str, ...]:
    """v2 first when set, then v1 (docs/compatibility.md#order-feed)."""
    topics = [settings.TRADING_ORDER_FEED_TOPIC_V2, settings.TRADING_ORDER_FEED_TOPIC]
    return tuple(dict.fromkeys(t for t in topics if t))


# librdkafka's local prefetch queue (all partitions together). Its default, 64 MB, kept its broker
# thread busy re-fetching: ~1.4 s of CPU per 60,000 records consumed in batches, against 0.02 s
# with 4 MB, which still holds two full batches of 1 KB records ahead of the handler.
PREFETCH_KBYTES = 4096


def prefetch_messages(batch_size: int) -> int:
    """librdkafka's `queued.min.messages`: how many records per partition it keeps fetching
    ahead. Its default, 100,000, kept two consumers' fetcher threads re-fetching behind a full
    queue: ~25 µs of librdkafka CPU per event each and twice that in the broker
    (bench/orderfeed_ingest.py, two processes), against ~7 µs with one batch per partition."""
    return max(batch_size, 1000)


# How long librdkafka waits before it looks again at a partition whose prefetch queue was full
# (`fetch.queue.backoff.ms`). Its default, 1,000 ms, with one batch per partition prefetched,
# capped a process at `queued.min.messages` records per partition per second: the handler
# drained a full queue in ~0.15 s, then waited the rest of the second for the next fetch
# (12,000 events/s for one process on six partitions). Looking again after 10 ms costs no
# request while the queue is still full.
PREFETCH_BACKOFF_MS = 10


@dataclass(frozen=True)
class OrderFeedConsumerSettings(ConsumerSettings):
    def consumer_config(self) -> dict[str, Any]:
        config = super().consumer_config()
        # a value given in TRADING_ORDER_FEED_KAFKA wins
        config.setdefault("queued.max.messages.kbytes", PREFETCH_KBYTES)
        config.setdefault("queued.min.messages", prefetch_messages(self.batch_size))
        config.setdefault("fetch.queue.backoff.ms", PREFETCH_BACKOFF_MS)
        return config


def _order_feed(**overrides: Any) -> dict[str, Any]:
    """What the order feed's consumer is made of beside its `TRADING_ORDER_FEED_*` settings."""
    return {
        "name": "orderfeed",
        "heartbeat_kind": HeartbeatKind.ORDERFEED_CONSUMER,
        "topics": order_feed_topics(),
        "security": settings.TRADING_ORDER_FEED_KAFKA,
        "max_handler_attempts": settings.TRADING_ORDER_FEED_MAX_HANDLER_ATTEMPTS,
        "settings_class": OrderFeedConsumerSettings,
        "unconfigured": OrderFeedNotConfigured(
            "TRADING_ORDER_FEED_BOOTSTRAP_SERVERS is not set: the order feed has no Kafka to read"
        ),
        **overrides,
    }


def order_feed_consumer_settings(**overrides: Any) -> ConsumerSettings:
    return consumer_settings_from("TRADING_ORDER_FEED", **_order_feed(**overrides))


def order_feed_consumer(
    *, idle_exit_seconds: float | None = None, max_messages: int | None = None, **overrides: Any
) -> BatchConsumer:
    return consumer_build(
        "TRADING_ORDER_FEED",
        handler=OrderFeedHandler(),
        metrics=ConsumerMetrics(
            messages=metrics.MESSAGES, errors=metrics.CONSUMER_ERRORS, lag=metrics.CONSUMER_LAG
        ),
        idle_exit_seconds=idle_exit_seconds,
        max_messages=max_messages,
        **_order_feed(**overrides),
    )
