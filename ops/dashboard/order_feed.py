"""The order feed's tiles: the feed as a whole and its partitions' consumer lag."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.utils.text import slugify

from ops.dashboard.heartbeats import heartbeat_live
from ops.dashboard.levels import Level, worst
from ops.dashboard.tiles import Tile
from orderfeed.selectors import KAFKA_UNREACHABLE, PROBE_STALE, FeedHealth
from torghut_site.models import HeartbeatKind, ProcessHeartbeat


def _lag_level(lag: int) -> Level:
    batch = settings.TRADING_ORDER_FEED_BATCH_SIZE
    return "ok" if lag <= batch else "warn" if lag <= 10 * batch else "bad"


def partition_tiles(feed: FeedHealth | None) -> list[Tile]:
    """Lag per partition as Kafka last told it (the group's committed offset against the end of
    the log; `order_feed_health`), not as a consumer reported it: a dead consumer's last "0
    behind" does not show. A partition that no member holds or whose offsets stalled is bad; a
    stale sample is at least warn."""
    if feed is None:
        return []
    stale: Level = (
        "warn" if PROBE_STALE in feed.reasons or KAFKA_UNREACHABLE in feed.reasons else "ok"
    )
    tiles = []
    for p in feed.partitions:
        name = f"{p.topic}[{p.partition}]"
        problems = [
            *(["no consumer"] if not p.assigned else []),
            *(["offsets stalled"] if p.stalled else []),
        ]
        committed = "none" if p.committed is None else f"{p.committed:,}"
        tiles.append(
            Tile(
                f"lag-{slugify(name)}",
                name,
                f"{p.lag:,} behind",
                worst(_lag_level(p.lag), stale, "bad" if problems else "ok"),
                ", ".join([*problems, f"committed {committed} of {p.end_offset:,}"]),
                feed.probe_age_seconds,
                p.lag,
            )
        )
    return tiles


def order_feed_tile(
    feed_on: bool,
    feed: FeedHealth | None,
    beats: list[ProcessHeartbeat],
    partitions: list[Tile],
    *,
    now: datetime,
) -> Tile:
    """Kafka's view of the feed (`order_feed_health`): bad with its reason codes when degraded,
    else the lag over every partition."""
    if not feed_on:
        return Tile(
            "order-feed", "Order feed", "off", "ok", "broker updates are applied in the cycle"
        )
    if feed is None:
        return Tile(
            "order-feed", "Order feed", "no Kafka", "bad", "TRADING_ORDER_FEED_BOOTSTRAP_SERVERS"
        )
    live = [
        b for b in beats if b.kind == HeartbeatKind.ORDERFEED_CONSUMER and heartbeat_live(b, now)
    ]
    consumers = f"{len(live)} live consumer(s)"
    if feed.reasons:
        detail = f"{consumers}; {feed.error}" if feed.error else consumers
        return Tile(
            "order-feed", "Order feed", ", ".join(feed.reasons), "bad", detail, number=feed.lag
        )
    return Tile(
        "order-feed",
        "Order feed",
        f"{feed.lag:,} behind on {len(partitions)} partition(s)",
        worst(*(t.level for t in partitions)),
        consumers,
        number=feed.lag,
    )
