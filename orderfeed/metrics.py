"""Order-feed metrics, with exactly the seed's names (`torghut_trading_order_feed_*`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

MESSAGES = Counter(
    "torghut_trading_order_feed_messages_total", "Kafka records polled from the order feed."
)
EVENTS_PERSISTED = Counter(
    "torghut_trading_order_feed_events_persisted_total", "New trade updates stored."
)
DUPLICATES = Counter(
    "torghut_trading_order_feed_duplicates_total",
    "Trade updates already stored (same fingerprint or same topic/partition/offset).",
)
OUT_OF_ORDER = Counter(
    "torghut_trading_order_feed_out_of_order_total",
    "Trade updates older than what their execution already applied (stored, not applied).",
)
MISSING_FIELDS = Counter(
    "torghut_trading_order_feed_missing_fields_total",
    "Records dropped to the dead letters: invalid JSON, no payload, no order identity.",
)
APPLY_UPDATES = Counter(
    "torghut_trading_order_feed_apply_updates_total",
    "Trade updates that moved an execution (status or fill).",
)
CONSUMER_ERRORS = Counter(
    "torghut_trading_order_feed_consumer_errors_total",
    "Kafka errors and failed handling attempts of the order-feed consumer.",
)
UNKNOWN_ORDERS = Counter(
    "torghut_trading_order_feed_unknown_orders_total",
    "Trade updates for orders torghut never sent (an operator must look).",
)
CONSUMER_LAG = Gauge(
    "torghut_trading_order_feed_consumer_lag",
    "Records behind the high watermark, per partition.",
    ["topic", "partition"],
    multiprocess_mode="livesum",
)
