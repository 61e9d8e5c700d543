"""A bounded probe of a consumer group, asked of Kafka itself (not of a consumer's own report).

One probe: the group's members and their assignments (`describe_consumer_groups`), its
committed offsets (`list_consumer_group_offsets`), the topics' partitions and each partition's
low and end offsets (a short-lived consumer's `list_topics` and `get_watermark_offsets`, outside
the group). Every request shares one deadline (`timeout_seconds`, ~2 s by default), so a health
read or a scrape never hangs on a dead broker: a probe that cannot finish raises `ProbeFailed`.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    Consumer,
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


_clients_lock = threading.Lock()
_clients_made: dict[tuple[int, str, tuple[tuple[str, str], ...]], tuple[AdminClient, Consumer]] = {}


def _clients(bootstrap_servers: str, security: Mapping[str, str]) -> tuple[AdminClient, Consumer]:
    """This process's probe clients for a cluster, made once and never destroyed: destroying an
    AdminClient whose request outlived the probe's deadline (Kafka down) tripped an assertion in
    librdkafka (`rd_kafka_enq_once_del_source_return`) and aborted the process (a Celery child
    running the beat probe). A late answer now lands in a future nobody reads. Keyed by pid too:
    librdkafka's threads do not survive fork."""
    key = (os.getpid(), bootstrap_servers, tuple(sorted(security.items())))
    with _clients_lock:
        clients = _clients_made.get(key)
        if clients is None:
            config = _client_config(bootstrap_servers, security)
            # the reader stays outside every group (never subscribes, never commits): it reads
            # metadata and watermarks only
            reader = kafka_consumer(
                {
                    **config,
                    "group.id": f"torghut-probe-{uuid.uuid4().hex[:8]}",
                    "enable.auto.commit": False,
                    "allow.auto.create.topics": False,
                }
            )
            clients = _clients_made[key] = (kafka_admin(config), reader)
    for client in clients:
        client.poll(0)  # serves the client's queued librdkafka logs (they wait for a poll)
    return clients


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
    admin, reader = _clients(bootstrap_servers, security or {})
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
    return GroupSample(group, state, members, partitions, missing)
