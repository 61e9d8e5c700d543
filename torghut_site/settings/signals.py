"""The `kafka` signal source: `run_signal_consumer` stores TA signal rows from a topic."""

from __future__ import annotations

from torghut_site.settings.base import env
from torghut_site.settings.kafka import kafka_consumer, kafka_security, kafka_topics
from torghut_site.settings.orderfeed import TRADING_ORDER_FEED_BOOTSTRAP_SERVERS
from torghut_site.settings.trading_lanes import TRADING_SIGNAL_SOURCE

TRADING_SIGNAL_KAFKA_BOOTSTRAP_SERVERS = env.str(
    "TRADING_SIGNAL_KAFKA_BOOTSTRAP_SERVERS", default=TRADING_ORDER_FEED_BOOTSTRAP_SERVERS
)
if TRADING_SIGNAL_SOURCE == "kafka" and not TRADING_SIGNAL_KAFKA_BOOTSTRAP_SERVERS:
    env.problem(
        "TRADING_SIGNAL_SOURCE=kafka requires TRADING_SIGNAL_KAFKA_BOOTSTRAP_SERVERS "
        "(or TRADING_ORDER_FEED_BOOTSTRAP_SERVERS)"
    )
(
    TRADING_SIGNAL_KAFKA_TOPIC,
    TRADING_SIGNAL_KAFKA_GROUP_ID,
    TRADING_SIGNAL_KAFKA_CLIENT_ID,
    TRADING_SIGNAL_KAFKA_GROUP_INSTANCE_ID,
    TRADING_SIGNAL_KAFKA_AUTO_OFFSET_RESET,
    TRADING_SIGNAL_KAFKA_POLL_MS,
    TRADING_SIGNAL_KAFKA_BATCH_SIZE,
    TRADING_SIGNAL_KAFKA_DLQ_TOPIC,
) = kafka_consumer(
    "TRADING_SIGNAL_KAFKA",
    topic="torghut.ta-signals.v1",
    group_id="torghut-ta-signals-v1",
    client_id="torghut-ta-signals",
    poll_ms=250,
    batch_size=500,
    max_batch_size=100000,
    dlq_topic="torghut.ta-signals.dlq",
)
TRADING_SIGNAL_KAFKA = kafka_security("TRADING_SIGNAL_KAFKA")
# how `manage.py kafka_topics ensure` creates the topic and its DLQ: 14 days, as the original
# TA topics
(
    TRADING_SIGNAL_KAFKA_TOPIC_PARTITIONS,
    TRADING_SIGNAL_KAFKA_TOPIC_REPLICATION,
    TRADING_SIGNAL_KAFKA_TOPIC_RETENTION_MS,
    TRADING_SIGNAL_KAFKA_DLQ_TOPIC_RETENTION_MS,
) = kafka_topics("TRADING_SIGNAL_KAFKA", partitions=3, retention_days=14)
