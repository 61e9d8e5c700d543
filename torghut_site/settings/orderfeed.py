"""The order feed (Kafka trade updates), the broker-to-Kafka bridge, consumer heartbeats."""

from __future__ import annotations

from torghut_site.settings.base import env
from torghut_site.settings.kafka import kafka_consumer, kafka_security

TRADING_ORDER_FEED_ENABLED = env.bool("TRADING_ORDER_FEED_ENABLED", default=False)
TRADING_ORDER_FEED_BOOTSTRAP_SERVERS = env.str("TRADING_ORDER_FEED_BOOTSTRAP_SERVERS")
if TRADING_ORDER_FEED_ENABLED and not TRADING_ORDER_FEED_BOOTSTRAP_SERVERS:
    env.problem(
        "TRADING_ORDER_FEED_BOOTSTRAP_SERVERS is required when TRADING_ORDER_FEED_ENABLED=true "
        "(host:port[,host:port...])"
    )
# A batch is whatever has arrived, up to BATCH_SIZE (the consumer never waits to fill one): a
# few records per batch at 1,000/s, full batches under a backlog, where 2,000 amortises the
# per-batch round trips and commit (bench/profile_orderfeed.py: ~43 µs of Postgres CPU per event
# at 2,000, 57 at 250). POLL_MS only bounds the wait for the first record of an idle partition.
# GROUP_INSTANCE_ID is Kafka static group membership (set it to the pod name of a StatefulSet): a
# restarted consumer gets its partitions back at once instead of after the dead member's session
# timeout. DLQ_TOPIC: where poison messages go.
(
    TRADING_ORDER_FEED_TOPIC,
    TRADING_ORDER_FEED_GROUP_ID,
    TRADING_ORDER_FEED_CLIENT_ID,
    TRADING_ORDER_FEED_GROUP_INSTANCE_ID,
    TRADING_ORDER_FEED_AUTO_OFFSET_RESET,
    TRADING_ORDER_FEED_POLL_MS,
    TRADING_ORDER_FEED_BATCH_SIZE,
    TRADING_ORDER_FEED_DLQ_TOPIC,
) = kafka_consumer(
    "TRADING_ORDER_FEED",
    topic="torghut.trade-updates.v1",
    group_id="torghut-order-feed-v1",
    client_id="torghut-order-feed",
    poll_ms=250,
    batch_size=2000,
    max_batch_size=100000,
    dlq_topic="torghut.trade-updates.dlq",
)
# the v2 topic, consumed beside the v1 topic when set
TRADING_ORDER_FEED_TOPIC_V2 = env.str("TRADING_ORDER_FEED_TOPIC_V2")
# how often a failing batch is retried before the consumer isolates the message that fails and
# dead-letters it
TRADING_ORDER_FEED_MAX_HANDLER_ATTEMPTS = env.int(
    "TRADING_ORDER_FEED_MAX_HANDLER_ATTEMPTS", default=3, min_value=1, max_value=20
)
TRADING_ORDER_FEED_KAFKA = kafka_security("TRADING_ORDER_FEED")
# the bridge (`run_trade_updates_stream`): reconnect backoff bounds
TRADING_ORDER_FEED_BRIDGE_BACKOFF_MIN_SECONDS = env.float(
    "TRADING_ORDER_FEED_BRIDGE_BACKOFF_MIN_SECONDS", default=1.0, min_value=0.01
)
TRADING_ORDER_FEED_BRIDGE_BACKOFF_MAX_SECONDS = env.float(
    "TRADING_ORDER_FEED_BRIDGE_BACKOFF_MAX_SECONDS", default=60.0, min_value=0.01
)
# the stream watchdog: an Alpaca lane with open orders while the market is open whose stream is
# disconnected, or has sent nothing for longer than this, refuses new risk-increasing orders
# (`trade_updates_stream_unhealthy`), is gap-filled from REST, and the bridge reopens it
TRADING_TRADE_UPDATES_MAX_SILENCE_SECONDS = env.float(
    "TRADING_TRADE_UPDATES_MAX_SILENCE_SECONDS", default=60.0, min_value=1.0
)
KAFKA_CONSUMER_HEARTBEAT_SECONDS = env.float(
    "KAFKA_CONSUMER_HEARTBEAT_SECONDS", default=15.0, min_value=0.1
)
KAFKA_CONSUMER_LAG_INTERVAL_SECONDS = env.float(
    "KAFKA_CONSUMER_LAG_INTERVAL_SECONDS", default=10.0, min_value=0.1
)
# an idle consumer (its last wait brought nothing) pauses its partitions for up to this long
# between 100 ms fetch windows (doubling from 50 ms): a broker that answers an empty fetch at
# once (noida-db) is not asked again and again; 0 = never pause (a Kafka broker long-polls).
# The first record after a quiet spell waits up to this long.
KAFKA_CONSUMER_IDLE_PAUSE_MS = env.int(
    "KAFKA_CONSUMER_IDLE_PAUSE_MS", default=500, min_value=0, max_value=10000
)
