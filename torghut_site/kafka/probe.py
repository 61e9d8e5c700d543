"""A bounded probe of a consumer group, asked of Kafka itself (not of a consumer's own report).

One probe: the group's members and their assignments (`describe_consumer_groups`), its
committed offsets (`list_consumer_group_offsets`), the topics' partitions and each partition's
low and end offsets (a short-lived consumer's `list_topics` and `get_watermark_offsets`, outside
the group). Every request shares one deadline (`timeout_seconds`, ~2 s by default), so a health
read or a scrape never hangs on a dead broker: a probe that cannot finish raises `ProbeFailed`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from torghut_site.kafka.clients import kafka_admin, kafka_consumer


@dataclass(frozen=True)
class PartitionSample:
    topic: str
    partition: int
    committed: int | None  # None: the group never committed an offset here
    low: int
    end: int
    assigned: bool  # a member of the group holds it

    @property
    def lag(self) -> int:
        """Records behind the end of the log (from the low watermark when nothing is committed)."""
        position = self.committed if self.committed is not None else self.low
        return max(self.end - position, 0)


@dataclass(frozen=True)
class GroupSample:
    group: str
    state: str
    members: int
    partitions: list[PartitionSample]
    missing_topics: list[str]


class ProbeFailed(Exception):
    """Kafka did not answer within the probe's deadline (or refused the request)."""


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise ProbeFailed("probe deadline passed")
    return left


def _client_config(bootstrap_servers: str, security: Mapping[str, str]) -> dict[str, Any]:
    # librdkafka's own socket and reconnect timings: shortening them made healthy probes fail
    # (the bootstrap connection is replaced by the advertised broker's); the deadline bounds all
    return {"bootstrap.servers": bootstrap_servers, **security}


def _assignments(admin: AdminClient, group: str, deadline: float) -> tuple[str, int, set[Any]]:
    described = admin.describe_consumer_groups([group], request_timeout=_remaining(deadline))
    result = described[group].result(timeout=_remaining(deadline))
    assigned = {
        (tp.topic, tp.partition)
        for member in result.members
        for tp in (member.assignment.topic_partitions if member.assignment else [])
    }
    state = getattr(result.state, "name", str(result.state)).lower()
    return state, len(result.members), assigned


def _committed(admin: AdminClient, group: str, deadline: float) -> dict[tuple[str, int], int]:
    listed = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group)], request_timeout=_remaining(deadline)
    )
    result = listed[group].result(timeout=_remaining(deadline))
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions if tp.offset >= 0}


def consumer_group_probe(
    *,
    bootstrap_servers: str,
    group: str,
    topics: tuple[str, ...],
    security: Mapping[str, str] | None = None,
    timeout_seconds: float = 2.0,
) -> GroupSample:
    """The group's partitions of `topics` as Kafka sees them now; `ProbeFailed` past the
    deadline."""
    deadline = time.monotonic() + timeout_seconds
    config = _client_config(bootstrap_servers, security or {})
    admin = kafka_admin(config)
    # outside the group (its own id, never subscribed, never commits): reads metadata and
    # watermarks only
    reader = kafka_consumer(
        {
            **config,
            "group.id": f"{group}.probe-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "allow.auto.create.topics": False,
        }
    )
    try:
        state, members, assigned = _assignments(admin, group, deadline)
        committed = _committed(admin, group, deadline)
        partitions: list[PartitionSample] = []
        missing: list[str] = []
        for topic in topics:
            meta = reader.list_topics(topic, timeout=_remaining(deadline)).topics.get(topic)
            if meta is None or meta.error is not None or not meta.partitions:
                missing.append(topic)
                continue
            for partition in sorted(meta.partitions):
                low, end = reader.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=_remaining(deadline)
                )
                partitions.append(
                    PartitionSample(
                        topic,
                        partition,
                        committed.get((topic, partition)),
                        low,
                        end,
                        (topic, partition) in assigned,
                    )
                )
    except KafkaException as exc:
        raise ProbeFailed(str(exc.args[0]) if exc.args else repr(exc)) from exc
    except TimeoutError as exc:  # a request's future did not complete before the deadline
        raise ProbeFailed("Kafka did not answer before the probe's deadline") from exc
    finally:
        reader.close()
    return GroupSample(group, state, members, partitions, missing)
