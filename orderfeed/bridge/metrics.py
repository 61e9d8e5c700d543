"""The bridge's Prometheus counters, created once, here (each labelled by the lane's account)."""

from __future__ import annotations

from prometheus_client import Counter

BRIDGE_UPDATES = Counter(
    "torghut_trading_order_feed_bridge_updates_total",
    "Trade updates received from the broker stream and handed to the producer.",
    ["account"],
)
BRIDGE_RECONNECTS = Counter(
    "torghut_trading_order_feed_bridge_reconnects_total",
    "Stream connection attempts after the first (connection lost or refused).",
    ["account"],
)
BRIDGE_PRODUCE_ERRORS = Counter(
    "torghut_trading_order_feed_bridge_produce_errors_total",
    "Trade updates that could not be queued or were not delivered to Kafka.",
    ["account"],
)
BRIDGE_RATE_LIMITED = Counter(
    "torghut_trading_order_feed_bridge_rate_limited_total",
    "Stream connections refused for too many connections (HTTP 429, connection limit exceeded).",
    ["account"],
)
BRIDGE_SILENCE_RECONNECTS = Counter(
    "torghut_trading_order_feed_bridge_silence_reconnects_total",
    "Connected streams closed and reopened after the max silence while orders were open.",
    ["account"],
)
BRIDGE_PRODUCER_FATAL_ERRORS = Counter(
    "torghut_trading_order_feed_bridge_producer_fatal_errors_total",
    "Fatal errors of the bridge's Kafka producer; each one replaced the producer.",
    ["account"],
)
