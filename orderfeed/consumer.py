"""The order-feed consumer: `torghut_site.kafka.BatchConsumer` over the trade-update topics."""

from __future__ import annotations

from django.conf import settings

from orderfeed import metrics
from orderfeed.services import OrderFeedHandler
from torghut_site.kafka import BatchConsumer, ConsumerMetrics, ConsumerSettings
from torghut_site.models import HeartbeatKind


class OrderFeedNotConfigured(RuntimeError):
    pass


def order_feed_topics() -> tuple[str, ...]:
    """v2 first when set (inventory §7), then v1."""
    topics = [settings.TRADING_ORDER_FEED_TOPIC_V2, settings.TRADING_ORDER_FEED_TOPIC]
    return tuple(dict.fromkeys(t for t in topics if t))


def order_feed_consumer_settings(**overrides: object) -> ConsumerSettings:
    if not settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS:
        raise OrderFeedNotConfigured(
            "TRADING_ORDER_FEED_BOOTSTRAP_SERVERS is not set: the order feed has no Kafka to read"
        )
    values: dict[str, object] = {
        "name": "orderfeed",
        "heartbeat_kind": HeartbeatKind.ORDERFEED_CONSUMER,
        "bootstrap_servers": settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS,
        "topics": order_feed_topics(),
        "group_id": settings.TRADING_ORDER_FEED_GROUP_ID,
        "client_id": settings.TRADING_ORDER_FEED_CLIENT_ID,
        "group_instance_id": settings.TRADING_ORDER_FEED_GROUP_INSTANCE_ID,
        "auto_offset_reset": settings.TRADING_ORDER_FEED_AUTO_OFFSET_RESET,
        "poll_ms": settings.TRADING_ORDER_FEED_POLL_MS,
        "batch_size": settings.TRADING_ORDER_FEED_BATCH_SIZE,
        "dlq_topic": settings.TRADING_ORDER_FEED_DLQ_TOPIC,
        "max_handler_attempts": settings.TRADING_ORDER_FEED_MAX_HANDLER_ATTEMPTS,
        "security": settings.TRADING_ORDER_FEED_KAFKA,
        "heartbeat_seconds": settings.KAFKA_CONSUMER_HEARTBEAT_SECONDS,
        "lag_interval_seconds": settings.KAFKA_CONSUMER_LAG_INTERVAL_SECONDS,
    }
    values.update(overrides)
    return ConsumerSettings(**values)  # type: ignore[arg-type]


def order_feed_consumer(
    *, idle_exit_seconds: float | None = None, max_messages: int | None = None, **overrides: object
) -> BatchConsumer:
    return BatchConsumer(
        order_feed_consumer_settings(**overrides),
        OrderFeedHandler(),
        ConsumerMetrics(
            messages=metrics.MESSAGES, errors=metrics.CONSUMER_ERRORS, lag=metrics.CONSUMER_LAG
        ),
        idle_exit_seconds=idle_exit_seconds,
        max_messages=max_messages,
    )
