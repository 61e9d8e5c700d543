"""The order feed's consumer group as Kafka sees it: a bounded probe whose sample is kept
(`torghut_site.services.consumer_group_probe_record`), written by beat and by a health read that
finds the last sample too old."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from torghut_site.models import ConsumerGroupProbe
from torghut_site.services import consumer_group_probe_record


def order_feed_probe(*, max_age_seconds: float | None = None) -> ConsumerGroupProbe | None:
    """Probe the order feed's consumer group on Kafka and keep the sample (beat every
    TRADING_ORDER_FEED_PROBE_INTERVAL_SECONDS; a health read when the last sample is older than
    `max_age_seconds`). None when the order feed has no Kafka configured."""
    if not settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS:
        return None
    group = settings.TRADING_ORDER_FEED_GROUP_ID
    if max_age_seconds is not None:
        fresh_since = timezone.now() - timedelta(seconds=max_age_seconds)
        last = ConsumerGroupProbe.objects.filter(group=group, probed_at__gte=fresh_since).first()
        if last is not None:
            return last
    return consumer_group_probe_record(
        group=group,
        # the consumer's topics (orderfeed.consumer.order_feed_topics: v2 first, then v1)
        topics=tuple(
            dict.fromkeys(
                t
                for t in (settings.TRADING_ORDER_FEED_TOPIC_V2, settings.TRADING_ORDER_FEED_TOPIC)
                if t
            )
        ),
        bootstrap_servers=settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS,
        security=settings.TRADING_ORDER_FEED_KAFKA,
        timeout_seconds=settings.TRADING_ORDER_FEED_PROBE_TIMEOUT_SECONDS,
    )
