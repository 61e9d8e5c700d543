"""Scrape-time gauges of the order feed's health as the last Kafka probe saw it (read from the
stored sample; the scrape itself never waits on Kafka). Registered by `OrderfeedConfig.ready()`.

- `torghut_kafka_consumer_group_lag{group,topic,partition}`: records behind the end of the log
- `torghut_kafka_consumer_group_partition_assigned{group,topic,partition}`: 1 while held
- `torghut_kafka_consumer_group_probe_up{group}`: 1 when Kafka answered the last probe
- `torghut_kafka_consumer_group_probe_age_seconds{group}`: age of the last probe
- `torghut_trading_order_feed_stalled`: 1 while a partition's committed offset is stalled
- `torghut_trading_order_feed_degraded{reason}`: 1 per reason code that holds now
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily, Metric

from orderfeed.selectors import OFFSETS_STALLED, REASONS, order_feed_health


def order_feed_probe_metrics() -> Iterable[Metric]:
    try:
        health = order_feed_health()
    except Exception:  # noqa: BLE001 - a scrape must not fail because the DB is down
        return []
    labels = ["group", "topic", "partition"]
    lag = GaugeMetricFamily(
        "torghut_kafka_consumer_group_lag",
        "Records behind the end of the log per partition, from Kafka's committed offsets.",
        labels=labels,
    )
    assigned = GaugeMetricFamily(
        "torghut_kafka_consumer_group_partition_assigned",
        "1 while a member of the consumer group holds the partition (Kafka's view).",
        labels=labels,
    )
    for p in health.partitions:
        key = [health.group, p.topic, str(p.partition)]
        lag.add_metric(key, float(p.lag))
        assigned.add_metric(key, 1.0 if p.assigned else 0.0)
    up = GaugeMetricFamily(
        "torghut_kafka_consumer_group_probe_up",
        "1 when Kafka answered the consumer group's last probe.",
        labels=["group"],
    )
    age = GaugeMetricFamily(
        "torghut_kafka_consumer_group_probe_age_seconds",
        "Seconds since the consumer group's last probe.",
        labels=["group"],
    )
    if health.probe_age_seconds is not None:
        up.add_metric([health.group], 0.0 if "kafka_unreachable" in health.reasons else 1.0)
        age.add_metric([health.group], health.probe_age_seconds)
    stalled = GaugeMetricFamily(
        "torghut_trading_order_feed_stalled",
        "1 while an order-feed partition's committed offset has not moved for "
        "TRADING_ORDER_FEED_STALL_SECONDS with records waiting.",
        value=1.0 if OFFSETS_STALLED in health.reasons else 0.0,
    )
    degraded = GaugeMetricFamily(
        "torghut_trading_order_feed_degraded",
        "1 for each reason the order feed is degraded now (Kafka's view).",
        labels=["reason"],
    )
    for reason in REASONS:
        degraded.add_metric([reason], 1.0 if reason in health.reasons else 0.0)
    return [lag, assigned, up, age, stalled, degraded]
