"""Reads of the order feed: what arrived, what needs an operator, whether the consumer lives."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Max
from django.utils import timezone

from orderfeed.models import EventOutcome, OrderEvent
from orderfeed.probe import order_feed_probe
from torghut_site.flags import flag_enabled
from torghut_site.models import (
    ConsumerGroupPartition,
    ConsumerGroupProbe,
    DeadLetterMessage,
    HeartbeatKind,
)
from torghut_site.selectors import heartbeat_list
from trading.models import Incident

# why the order feed is degraded, as `/trading/health`, `/trading/status`, the admin tile and the
# `torghut_trading_order_feed_degraded{reason}` gauge name it
NO_PARTITION_ASSIGNED = "no_partition_assigned"
OFFSETS_STALLED = "offsets_stalled"
KAFKA_UNREACHABLE = "kafka_unreachable"
LAG_ABOVE_THRESHOLD = "lag_above_threshold"
PROBE_STALE = "probe_stale"
TOPIC_MISSING = "topic_missing"
REASONS = (
    NO_PARTITION_ASSIGNED,
    OFFSETS_STALLED,
    KAFKA_UNREACHABLE,
    LAG_ABOVE_THRESHOLD,
    PROBE_STALE,
    TOPIC_MISSING,
)


@dataclass(frozen=True)
class PartitionHealth:
    topic: str
    partition: int
    committed: int | None
    end_offset: int
    lag: int
    assigned: bool
    stalled: bool
    unassigned_seconds: float | None  # how long no member held it (None: held)

    def as_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "committed": self.committed,
            "end_offset": self.end_offset,
            "lag": self.lag,
            "assigned": self.assigned,
            "stalled": self.stalled,
            "unassigned_seconds": (
                None if self.unassigned_seconds is None else round(self.unassigned_seconds, 1)
            ),
        }


@dataclass(frozen=True)
class FeedHealth:
    """The order feed as Kafka last answered for its consumer group; `reasons` empty = ok."""

    group: str
    reasons: list[str]
    probed_at: datetime | None
    probe_age_seconds: float | None
    error: str
    partitions: list[PartitionHealth] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.reasons

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "reasons": self.reasons,
            "group": self.group,
            "probed_at": self.probed_at,
            "probe_age_seconds": (
                None if self.probe_age_seconds is None else round(self.probe_age_seconds, 1)
            ),
            "error": self.error,
            "lag": self.lag,
            "partitions": [p.as_json() for p in self.partitions],
        }


def _partition_health(row: ConsumerGroupPartition, now: datetime) -> PartitionHealth:
    stalled = (
        row.lag > 0
        and (now - row.progress_at).total_seconds() >= settings.TRADING_ORDER_FEED_STALL_SECONDS
    )
    return PartitionHealth(
        row.topic,
        row.partition,
        row.committed,
        row.end_offset,
        row.lag,
        row.assigned,
        stalled,
        None if row.unassigned_since is None else (now - row.unassigned_since).total_seconds(),
    )


def order_feed_health(*, now: datetime | None = None) -> FeedHealth:
    """The order feed's rules over the last probe (no Kafka I/O here; `order_feed_probe`
    refreshes the sample): degraded when Kafka did not answer (`kafka_unreachable`), when the
    sample is older than 3 probe intervals (`probe_stale`), when a topic does not exist
    (`topic_missing`), when a partition has had no member of the group for
    TRADING_ORDER_FEED_UNASSIGNED_GRACE_SECONDS (`no_partition_assigned`), when a partition's
    committed offset has not moved for TRADING_ORDER_FEED_STALL_SECONDS while records wait
    (`offsets_stalled`), or when more than TRADING_ORDER_FEED_LAG_ALERT records wait in all
    (`lag_above_threshold`)."""
    now = now or timezone.now()
    group = settings.TRADING_ORDER_FEED_GROUP_ID
    probe = ConsumerGroupProbe.objects.filter(group=group).first()
    partitions = [
        _partition_health(row, now)
        for row in ConsumerGroupPartition.objects.filter(group=group).order_by("topic", "partition")
    ]
    if probe is None:
        return FeedHealth(group, [PROBE_STALE], None, None, "never probed", partitions)
    age = (now - probe.probed_at).total_seconds()
    reasons: list[str] = []
    if not probe.reachable:
        reasons.append(KAFKA_UNREACHABLE)
    elif age > 3 * settings.TRADING_ORDER_FEED_PROBE_INTERVAL_SECONDS:
        reasons.append(PROBE_STALE)
    if probe.reachable:
        if probe.missing_topics:
            reasons.append(TOPIC_MISSING)
        grace = settings.TRADING_ORDER_FEED_UNASSIGNED_GRACE_SECONDS
        if any(
            p.unassigned_seconds is not None and p.unassigned_seconds >= grace for p in partitions
        ):
            reasons.append(NO_PARTITION_ASSIGNED)
        if any(p.stalled for p in partitions):
            reasons.append(OFFSETS_STALLED)
        if sum(p.lag for p in partitions) > settings.TRADING_ORDER_FEED_LAG_ALERT:
            reasons.append(LAG_ABOVE_THRESHOLD)
    return FeedHealth(group, reasons, probe.probed_at, age, probe.error, partitions)


def order_feed_probed_health(*, now: datetime | None = None) -> FeedHealth:
    """`order_feed_health` over a sample no older than TRADING_ORDER_FEED_PROBE_INTERVAL_SECONDS
    (probed now when beat has not): health works without beat."""
    order_feed_probe(max_age_seconds=settings.TRADING_ORDER_FEED_PROBE_INTERVAL_SECONDS)
    return order_feed_health(now=now)


def order_feed_status(*, window: timedelta = timedelta(hours=24)) -> dict[str, Any]:
    """The order feed at a glance (for `/trading/status`, `/trading/health` and the admin):
    its events, and its health as Kafka tells it (`health`: reasons, per-partition committed,
    end and lag)."""
    since = timezone.now() - window
    recent = OrderEvent.objects.filter(received_at__gte=since)
    # one pass over the window: per outcome its count and newest event
    per_outcome = list(
        recent.values_list("outcome").annotate(n=Count("pk"), at=Max("received_at")).order_by()
    )
    outcomes = {outcome: n for outcome, n, _ in per_outcome}
    # within the window the BRIN index on received_at finds the pages; before it, the newest row
    # by primary key (a whole-table max would read every event)
    last = max((at for _, _, at in per_outcome), default=None) or (
        OrderEvent.objects.order_by("-pk").values_list("received_at", flat=True).first()
    )
    consumers = heartbeat_list(kind=HeartbeatKind.ORDERFEED_CONSUMER)
    enabled = flag_enabled("TRADING_ORDER_FEED_ENABLED")
    # asked of Kafka only when the feed runs (a switched-off feed has nothing to be healthy at)
    health = (
        order_feed_probed_health()
        if enabled and settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS
        else None
    )
    return {
        "enabled": enabled,
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
                "state": c.state,
                "pid": c.pid,
                "hostname": c.hostname,
                "assigned": c.details.get("assigned", []),
            }
            for c in consumers
        ],
        "health": health.as_json() if health is not None else None,
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
