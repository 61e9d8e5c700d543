"""Order-feed tasks: the periodic probe of the consumer group on Kafka."""

from __future__ import annotations

from celery import shared_task

from orderfeed.probe import order_feed_probe
from torghut_site.flags import flag_enabled


@shared_task(ignore_result=True, soft_time_limit=20, time_limit=30)
def order_feed_probe_run() -> bool | None:
    """Keep a fresh Kafka sample of the order feed's group (the stall rule compares samples over
    time). Whether Kafka answered; None when the feed is off or has no Kafka configured."""
    if not flag_enabled("TRADING_ORDER_FEED_ENABLED"):
        return None
    probe = order_feed_probe()
    return None if probe is None else probe.reachable
