"""Kafka client configuration: the idempotent producer, and a consumer's settings read from its
`<prefix>_*` Django settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from torghut_site.kafka.clients import with_client_logger


def producer_config(
    *, bootstrap_servers: str, client_id: str, security: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """An idempotent producer: retries never duplicate or reorder within a partition; it never
    creates a topic (`torghut_site.kafka.topics`: producing to a missing one fails); its
    librdkafka logs go through Python logging (`torghut_site.kafka.clients`)."""
    return with_client_logger(
        {
            "bootstrap.servers": bootstrap_servers,
            "client.id": client_id,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            "message.timeout.ms": 30000,
            "allow.auto.create.topics": False,
            **(security or {}),
        }
    )


@dataclass(frozen=True)
class ConsumerSettings:
    name: str
    heartbeat_kind: str
    bootstrap_servers: str
    topics: tuple[str, ...]
    group_id: str
    client_id: str
    group_instance_id: str = ""
    # the process's stable identity: its heartbeat row's name and, unless
    # `<PREFIX>_GROUP_INSTANCE_ID` is set, the source of its static `group.instance.id`
    # (`<group_id>-<instance_name>`)
    instance_name: str = ""
    # where a partition without a committed offset starts (BatchConsumer._on_assign): "earliest"
    # (after the handler's own state, when it has one) or, only when configured, "latest"
    auto_offset_reset: str = "earliest"
    poll_ms: int = 250
    batch_size: int = 200
    dlq_topic: str = ""
    max_handler_attempts: int = 3
    security: Mapping[str, str] = field(default_factory=dict)
    heartbeat_seconds: float = 15.0
    lag_interval_seconds: float = 10.0
    retry_backoff_seconds: float = 0.2
    retry_backoff_max_seconds: float = 10.0
    # ask the handler where its own state says to start (`StartingHandler`); --from-beginning
    # turns it off
    start_from_own_state: bool = True
    idle_pause_ms: int = 0

    def consumer_config(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": self.group_id,
            "client.id": self.client_id,
            "auto.offset.reset": self.auto_offset_reset,
            "enable.auto.commit": True,
            "auto.commit.interval.ms": 1000,
            "enable.auto.offset.store": False,  # offsets are stored only after the DB commit
            "enable.partition.eof": False,
            # a missing topic is an error (`kafka_topics ensure` creates it), never created here
            "allow.auto.create.topics": False,
            "isolation.level": "read_committed",
            # eager (one round: revoke all, assign all). cooperative-sticky left a partition that
            # moved to a joining member assigned to nobody on the test broker (noida-db): 1 join
            # in 3, against 0 in 8 with range (the second member held its share after 0.4 s)
            "partition.assignment.strategy": "range",
            "session.timeout.ms": 30000,
            "max.poll.interval.ms": 300000,
            # long poll: an empty partition's fetch waits at the broker for data (up to 500 ms)
            # instead of being answered and asked again at once (librdkafka's defaults, stated:
            # idle costs nothing only with them; noida-db ignores both, see idle_pause_ms)
            "fetch.wait.max.ms": 500,
            "fetch.min.bytes": 1,
            **self.security,
            # static membership (on by default, see `static_group_instance_id`): a restarted
            # process with the same instance name takes its partitions back at once instead of
            # waiting for the dead member's session to expire
            **({"group.instance.id": self.group_instance_id} if self.group_instance_id else {}),
        }


def static_group_instance_id(*, group_id: str, instance_name: str, explicit: str = "") -> str:
    """The consumer's Kafka `group.instance.id`: `<PREFIX>_GROUP_INSTANCE_ID` when set, otherwise
    `<group_id>-<instance_name>` (stable across restarts of the same instance, distinct per
    instance). Two live consumers with one id fence each other, hence the start-up refusal
    (`torghut_site.services.heartbeat_claim`)."""
    if explicit:
        return explicit
    return f"{group_id}-{instance_name}" if instance_name else ""


class ConsumerNotConfigured(RuntimeError):
    """The consumer's `<prefix>_BOOTSTRAP_SERVERS` is empty: it has no Kafka to read."""


def consumer_settings_from(
    prefix: str,
    *,
    name: str,
    heartbeat_kind: str,
    security: Mapping[str, str],
    unconfigured: Exception,
    topics: tuple[str, ...] | None = None,
    settings_class: type[ConsumerSettings] = ConsumerSettings,
    max_handler_attempts: int = 3,
    **overrides: Any,
) -> ConsumerSettings:
    """A consumer's settings from its `<prefix>_BOOTSTRAP_SERVERS` (`unconfigured` is raised when
    it is empty), `_TOPIC` (unless `topics` are given), `_GROUP_ID`, `_CLIENT_ID`,
    `_GROUP_INSTANCE_ID`, `_AUTO_OFFSET_RESET`, `_POLL_MS`, `_BATCH_SIZE` and `_DLQ_TOPIC`
    settings; `overrides` (e.g. `auto_offset_reset` for --from-beginning, `instance_name` for
    --name) win. The instance name defaults to TORGHUT_INSTANCE_NAME (else the hostname)."""
    bootstrap_servers = getattr(settings, f"{prefix}_BOOTSTRAP_SERVERS")
    if not bootstrap_servers:
        raise unconfigured
    values: dict[str, Any] = {
        "name": name,
        "heartbeat_kind": heartbeat_kind,
        "bootstrap_servers": bootstrap_servers,
        "topics": topics if topics is not None else (getattr(settings, f"{prefix}_TOPIC"),),
        "group_id": getattr(settings, f"{prefix}_GROUP_ID"),
        "client_id": getattr(settings, f"{prefix}_CLIENT_ID"),
        "instance_name": settings.TORGHUT_INSTANCE_NAME,
        "auto_offset_reset": getattr(settings, f"{prefix}_AUTO_OFFSET_RESET"),
        "poll_ms": getattr(settings, f"{prefix}_POLL_MS"),
        "batch_size": getattr(settings, f"{prefix}_BATCH_SIZE"),
        "dlq_topic": getattr(settings, f"{prefix}_DLQ_TOPIC"),
        "max_handler_attempts": max_handler_attempts,
        "security": security,
        "heartbeat_seconds": settings.KAFKA_CONSUMER_HEARTBEAT_SECONDS,
        "lag_interval_seconds": settings.KAFKA_CONSUMER_LAG_INTERVAL_SECONDS,
        "idle_pause_ms": settings.KAFKA_CONSUMER_IDLE_PAUSE_MS,
    }
    values.update(overrides)
    values["group_instance_id"] = static_group_instance_id(
        group_id=values["group_id"],
        instance_name=values["instance_name"],
        explicit=overrides.get("group_instance_id")
        or getattr(settings, f"{prefix}_GROUP_INSTANCE_ID"),
    )
    return settings_class(**values)
