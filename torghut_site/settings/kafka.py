"""Kafka: the shared choices and the helpers every consumer's settings are made with."""

from __future__ import annotations

from typing import NamedTuple

from torghut_site.settings.base import env

KAFKA_OFFSET_RESETS = ("earliest", "latest", "error")
KAFKA_SECURITY_PROTOCOLS = ("plaintext", "ssl", "sasl_plaintext", "sasl_ssl")
KAFKA_SASL_MECHANISMS = ("plain", "scram-sha-256", "scram-sha-512")


def kafka_security(prefix: str) -> dict[str, str]:
    """`<prefix>_SECURITY_PROTOCOL`, `_SASL_MECHANISM`, `_SASL_USERNAME`, `_SASL_PASSWORD`."""
    protocol = env.choice(
        f"{prefix}_SECURITY_PROTOCOL", choices=KAFKA_SECURITY_PROTOCOLS, default="plaintext"
    ).upper()
    mechanism = env.choice(
        f"{prefix}_SASL_MECHANISM", choices=KAFKA_SASL_MECHANISMS, default=""
    ).upper()
    username = env.str(f"{prefix}_SASL_USERNAME")
    password = env.secret(f"{prefix}_SASL_PASSWORD")
    if protocol.startswith("SASL") and not (mechanism and username and password):
        env.problem(
            f"{prefix}_SECURITY_PROTOCOL={protocol} needs {prefix}_SASL_MECHANISM "
            f"(one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), {prefix}_SASL_USERNAME and "
            f"{prefix}_SASL_PASSWORD"
        )
    security = {"security.protocol": protocol}
    if protocol.startswith("SASL"):
        security.update(
            {"sasl.mechanism": mechanism, "sasl.username": username, "sasl.password": password}
        )
    return security


class KafkaConsumerSettings(NamedTuple):
    """A consumer's topic, group and batch settings, in the order `kafka_consumer` reads them."""

    topic: str
    group_id: str
    client_id: str
    group_instance_id: str
    auto_offset_reset: str
    poll_ms: int
    batch_size: int
    dlq_topic: str


def kafka_consumer(
    consumer: str,
    *,
    topic: str,
    group_id: str,
    client_id: str,
    poll_ms: int,
    batch_size: int,
    max_batch_size: int,
    dlq_topic: str,
) -> KafkaConsumerSettings:
    """`<consumer>_TOPIC`, `_GROUP_ID`, `_CLIENT_ID`, `_GROUP_INSTANCE_ID` (Kafka static group
    membership; empty, the default, derives it from the process's stable instance name as
    `<group id>-<instance name>` — `--name`, TORGHUT_INSTANCE_NAME, else the hostname — so static
    membership is always on; set it only to pin an id), `_AUTO_OFFSET_RESET`, `_POLL_MS`,
    `_BATCH_SIZE` and `_DLQ_TOPIC`, with each consumer's defaults; its bootstrap servers and
    `kafka_security` are read beside it."""
    return KafkaConsumerSettings(
        topic=env.str(f"{consumer}_TOPIC", default=topic),
        group_id=env.str(f"{consumer}_GROUP_ID", default=group_id),
        client_id=env.str(f"{consumer}_CLIENT_ID", default=client_id),
        group_instance_id=env.str(f"{consumer}_GROUP_INSTANCE_ID"),
        auto_offset_reset=env.choice(
            f"{consumer}_AUTO_OFFSET_RESET", choices=KAFKA_OFFSET_RESETS, default="earliest"
        ),
        poll_ms=env.int(f"{consumer}_POLL_MS", default=poll_ms, min_value=10, max_value=60000),
        batch_size=env.int(
            f"{consumer}_BATCH_SIZE", default=batch_size, min_value=1, max_value=max_batch_size
        ),
        dlq_topic=env.str(f"{consumer}_DLQ_TOPIC", default=dlq_topic),
    )


# Kafka's own default retention (7 days); the original service's topics kept 7 (trade updates)
# and 14 days (TA signals). Dead letters are kept longer: an operator reads them days later.
_DAY_MS = 24 * 3600 * 1000
# a sanity bound on a typo (10000 partitions is far beyond what one consumer group uses)
_MAX_TOPIC_PARTITIONS = 10000


class KafkaTopicSettings(NamedTuple):
    """How `manage.py kafka_topics ensure` creates a consumer's topics, in the order
    `kafka_topics` reads them: the topic(s) and the dead-letter topic share the replication
    factor; the dead-letter topic has one partition (dead letters are rare and read by
    operators, not by a consumer group) and its own retention."""

    partitions: int
    replication: int
    retention_ms: int
    dlq_retention_ms: int


def kafka_topics(
    consumer: str, *, partitions: int, retention_days: int, dlq_retention_days: int = 30
) -> KafkaTopicSettings:
    """`<consumer>_TOPIC_PARTITIONS`, `_TOPIC_REPLICATION` (1: a single broker; 3 in the
    original production cluster), `_TOPIC_RETENTION_MS` and `_DLQ_TOPIC_RETENTION_MS`; each a
    positive integer (a bad value stops startup naming the variable)."""
    return KafkaTopicSettings(
        partitions=env.int(
            f"{consumer}_TOPIC_PARTITIONS",
            default=partitions,
            min_value=1,
            max_value=_MAX_TOPIC_PARTITIONS,
        ),
        replication=env.int(f"{consumer}_TOPIC_REPLICATION", default=1, min_value=1),
        retention_ms=env.int(
            f"{consumer}_TOPIC_RETENTION_MS", default=retention_days * _DAY_MS, min_value=1
        ),
        dlq_retention_ms=env.int(
            f"{consumer}_DLQ_TOPIC_RETENTION_MS", default=dlq_retention_days * _DAY_MS, min_value=1
        ),
    )
