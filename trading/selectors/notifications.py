"""Reads of the operator notifications (trading/notifications.py) for /metrics."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric

from trading.models import Notification, NotificationStatus


def notification_gauges() -> Iterable[Metric]:
    """Scrape-time `torghut_notifications_rows{status}`: the rows in each status, read from the
    database (a failed row stays until someone resends it from the admin)."""
    rows = GaugeMetricFamily(
        "torghut_notifications_rows",
        "Operator notification rows by status (failed rows wait for a resend in the admin).",
        labels=["status"],
    )
    try:
        counts = dict(
            Notification.objects.order_by()
            .values_list("status")
            .annotate(n=Count("pk"))
            .values_list("status", "n")
        )
    except Exception:  # noqa: BLE001 - a scrape must not fail because the DB is down
        return []
    for status in NotificationStatus.values:
        rows.add_metric([status], float(counts.get(status, 0)))
    return [rows]
