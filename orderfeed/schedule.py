"""Order-feed entries of the Celery beat schedule: the consumer group's probe every
TRADING_ORDER_FEED_PROBE_INTERVAL_SECONDS while the feed has Kafka (expiring
within its period). Registered by `OrderfeedConfig.ready()`."""

from __future__ import annotations

from django.conf import settings

from torghut_site.schedule import ScheduleEntries, every


def orderfeed_schedule() -> ScheduleEntries:
    # scheduled whenever the feed has Kafka: the task reads TRADING_ORDER_FEED_ENABLED (a flag)
    if not settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS:
        return []
    return [
        (
            "orderfeed-probe",
            every(
                settings.TRADING_ORDER_FEED_PROBE_INTERVAL_SECONDS,
                "orderfeed.tasks.order_feed_probe_run",
            ),
        )
    ]
