"""Reads of the order feed: what arrived, what needs an operator, whether the consumer lives."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Max
from django.utils import timezone

from orderfeed.models import EventOutcome, OrderEvent
from torghut_site.flags import flag_enabled
from torghut_site.models import DeadLetterMessage, HeartbeatKind
from torghut_site.selectors import heartbeat_list
from trading.models import Incident


def order_feed_status(*, window: timedelta = timedelta(hours=24)) -> dict[str, Any]:
    """The order feed at a glance (for `/trading/status`, `/trading/health` and the admin)."""
    since = timezone.now() - window
    recent = OrderEvent.objects.filter(received_at__gte=since)
    outcomes = dict(recent.values_list("outcome").annotate(n=Count("pk")).order_by())
    # within the window the BRIN index on received_at finds the pages; before it, the newest row
    # by primary key (a whole-table max would read every event)
    last = recent.aggregate(at=Max("received_at"))["at"] or (
        OrderEvent.objects.order_by("-pk").values_list("received_at", flat=True).first()
    )
    stale_after = timedelta(seconds=3 * settings.KAFKA_CONSUMER_HEARTBEAT_SECONDS)
    consumers = heartbeat_list(kind=HeartbeatKind.ORDERFEED_CONSUMER, max_age=stale_after)
    return {
        "enabled": flag_enabled("TRADING_ORDER_FEED_ENABLED"),
        "topics": [
            t
            for t in (settings.TRADING_ORDER_FEED_TOPIC_V2, settings.TRADING_ORDER_FEED_TOPIC)
            if t
        ],
        "last_event_at": last,
        "events_window": sum(outcomes.values()),
        "outcomes_window": outcomes,
        "unknown_orders_open": Incident.objects.filter(
            kind="unknown_order", resolved_at__isnull=True
        ).count(),
        "dead_letters_window": DeadLetterMessage.objects.filter(
            consumer="orderfeed", created_at__gte=since
        ).count(),
        "consumers": [
            {
                "name": c.name,
                "healthy": c.healthy,
                "age_seconds": round(c.age_seconds, 1),
                "state": c.details.get("state", ""),
                "assigned": c.details.get("assigned", []),
            }
            for c in consumers
        ],
    }


def order_events_for_execution(*, execution_id: int) -> list[OrderEvent]:
    return list(OrderEvent.objects.filter(execution_id=execution_id).order_by("received_at", "pk"))


def unknown_order_events(*, limit: int = 100) -> list[OrderEvent]:
    return list(
        OrderEvent.objects.filter(outcome=EventOutcome.UNKNOWN_ORDER).order_by("-received_at")[
            :limit
        ]
    )


def order_events_next_offsets(
    *, partitions: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    """For each Kafka `(topic, partition)` with stored events: the offset after the newest one.

    Every record before it was applied: a partition's records are handled in log order, a batch
    in one transaction, and a batch whose events are stored had every earlier record of its
    partition handled (stored, recognised as a duplicate, or dead-lettered) in that or an earlier
    transaction. One max per partition, read from the end of the (topic, partition, offset)
    unique index."""
    found: dict[tuple[str, int], int] = {}
    for topic, partition in partitions:
        newest = OrderEvent.objects.filter(
            source_topic=topic, source_partition=partition
        ).aggregate(newest=Max("source_offset"))["newest"]
        if newest is not None:
            found[(topic, partition)] = newest + 1
    return found
