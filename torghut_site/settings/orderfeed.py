"""The order feed (Kafka trade updates), the broker-to-Kafka bridge, consumer heartbeats."""

from __future__ import annotations

from torghut_site.settings.base import env
from torghut_site.settings.kafka import kafka_consumer, kafka_security, kafka_topics

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
# Kafka static group membership is on by default: the group.instance.id is
# `<GROUP_ID>-<instance name>` (the consumer's --name, TORGHUT_INSTANCE_NAME, else the hostname),
# so a restarted consumer gets its partitions back at once instead of after the dead member's
# session timeout; GROUP_INSTANCE_ID overrides the derived id. DLQ_TOPIC: where poison messages go.
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
# how `manage.py kafka_topics ensure` creates the topics (v1, v2 when set, the DLQ): 3 partitions
# and 7 days, as the original service's trade-update topics
(
    TRADING_ORDER_FEED_TOPIC_PARTITIONS,
    TRADING_ORDER_FEED_TOPIC_REPLICATION,
    TRADING_ORDER_FEED_TOPIC_RETENTION_MS,
    TRADING_ORDER_FEED_DLQ_TOPIC_RETENTION_MS,
) = kafka_topics("TRADING_ORDER_FEED", partitions=3, retention_days=7)
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

# Order-feed health from Kafka itself, not from a consumer's own report: a bounded probe (the
# group's committed offsets, members' assignments, the partitions' end offsets; at most
# PROBE_TIMEOUT_SECONDS) every PROBE_INTERVAL_SECONDS (beat, and `/trading/health` when the last
# sample is older). The feed is degraded when a partition has no live consumer for longer than
# UNASSIGNED_GRACE_SECONDS (`no_partition_assigned`), when a partition's committed offset has not
# moved for STALL_SECONDS while records wait behind it (`offsets_stalled`), when Kafka does not
# answer (`kafka_unreachable`), or when more than LAG_ALERT records wait (`lag_above_threshold`).
TRADING_ORDER_FEED_PROBE_INTERVAL_SECONDS = env.float(
    "TRADING_ORDER_FEED_PROBE_INTERVAL_SECONDS", default=15.0, min_value=0.1
)
TRADING_ORDER_FEED_PROBE_TIMEOUT_SECONDS = env.float(
    "TRADING_ORDER_FEED_PROBE_TIMEOUT_SECONDS", default=2.0, min_value=0.1, max_value=30.0
)
TRADING_ORDER_FEED_UNASSIGNED_GRACE_SECONDS = env.float(
    "TRADING_ORDER_FEED_UNASSIGNED_GRACE_SECONDS", default=60.0, min_value=0.0
)
TRADING_ORDER_FEED_STALL_SECONDS = env.float(
    "TRADING_ORDER_FEED_STALL_SECONDS", default=60.0, min_value=0.1
)
TRADING_ORDER_FEED_LAG_ALERT = env.int("TRADING_ORDER_FEED_LAG_ALERT", default=20000, min_value=1)
# an idle consumer (its last wait brought nothing) pauses its partitions for up to this long
# between 100 ms fetch windows (doubling from 50 ms): a broker that answers an empty fetch at
# once (noida-db) is not asked again and again; 0 = never pause (a Kafka broker long-polls).
# The first record after a quiet spell waits up to this long.
KAFKA_CONSUMER_IDLE_PAUSE_MS = env.int(
    "KAFKA_CONSUMER_IDLE_PAUSE_MS", default=500, min_value=0, max_value=10000
)
