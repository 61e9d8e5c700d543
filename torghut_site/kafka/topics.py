"""Kafka topics as code: every topic the configuration names, how it is created, and the check
that our clients make before they use one.

Topics are never auto-created by our clients (`allow.auto.create.topics=false` on every consumer
and producer config): a producer that creates its topic on first produce makes it with the
broker's defaults (one partition), and a consumer that subscribed before it existed sees it only
at the next metadata refresh, minutes later. Instead `manage.py kafka_topics ensure` creates the
topics from the `<PREFIX>_TOPIC_PARTITIONS`, `_TOPIC_REPLICATION`, `_TOPIC_RETENTION_MS` and
`_DLQ_TOPIC_RETENTION_MS` settings, and every consumer and producer refuses to run on a topic that
does not exist (`topics_require`), naming it.

The topics of a consumer are in the plan when that consumer is configured to run: the order feed
when TRADING_ORDER_FEED_BOOTSTRAP_SERVERS is set (its flag can be flipped on at run time), the TA
signals when TRADING_SIGNAL_SOURCE=kafka, the whitepaper intake when WHITEPAPER_KAFKA_ENABLED;
`include_all` adds every consumer with bootstrap servers. Nothing here deletes a topic or removes
partitions; partitions are added only when asked (`grow_partitions`), because a key's partition
changes with the count.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)
from django.conf import settings

from torghut_site.kafka.clients import kafka_admin

ENSURE_HINT = "run `manage.py kafka_topics ensure`"
# how long a metadata or admin request may take before the check reports the broker unreachable
TOPIC_CHECK_TIMEOUT_SECONDS = 10.0

Status = Literal["ok", "created", "grown", "missing", "drift", "error"]


@dataclass(frozen=True)
class Cluster:
    """Where a consumer's topics live (the TA signals and whitepapers may use other clusters)."""

    bootstrap_servers: str
    security: tuple[tuple[str, str], ...] = ()

    def admin_config(self) -> dict[str, Any]:
        # an admin client is a producer to librdkafka, whose metadata requests would create the
        # topic they ask about
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "allow.auto.create.topics": False,
            **dict(self.security),
        }


@dataclass(frozen=True)
class TopicSpec:
    """One topic as the configuration wants it; `prefix` names the settings it comes from."""

    name: str
    partitions: int
    replication: int
    retention_ms: int
    prefix: str
    role: Literal["topic", "topic_v2", "dlq"]
    cluster: Cluster

    @property
    def partitions_setting(self) -> str:
        return "(one partition)" if self.role == "dlq" else f"{self.prefix}_TOPIC_PARTITIONS"

    @property
    def retention_setting(self) -> str:
        return f"{self.prefix}_{'DLQ_' if self.role == 'dlq' else ''}TOPIC_RETENTION_MS"


@dataclass(frozen=True)
class TopicReport:
    """What the broker holds for one spec, and what `ensure` did about it."""

    spec: TopicSpec
    status: Status
    partitions: int | None = None
    replication: int | None = None
    retention_ms: int | None = None
    notes: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        """`check` fails on anything but ok; `ensure` on what it could not create or grow."""
        return self.status in ("missing", "drift", "error")

    def line(self) -> str:
        s = self.spec
        head = f"{self.status.upper():8} {s.name} ({s.prefix} {s.role})"
        shape = (
            f"partitions {self.partitions}/{s.partitions}, replication "
            f"{self.replication}/{s.replication}, retention.ms {self.retention_ms}/{s.retention_ms}"
            " (have/configured)"
            if self.partitions is not None
            else f"configured: partitions {s.partitions}, replication {s.replication}, "
            f"retention.ms {s.retention_ms}"
        )
        return "; ".join([f"{head}: {shape}", *self.notes])

    def as_json(self) -> dict[str, Any]:
        s = self.spec
        return {
            "topic": s.name,
            "prefix": s.prefix,
            "role": s.role,
            "bootstrap_servers": s.cluster.bootstrap_servers,
            "status": self.status,
            "configured": {
                "partitions": s.partitions,
                "replication": s.replication,
                "retention_ms": s.retention_ms,
            },
            "actual": {
                "partitions": self.partitions,
                "replication": self.replication,
                "retention_ms": self.retention_ms,
            },
            "notes": list(self.notes),
        }


# -- the plan: what the configuration names ----------------------------------------------------
def _consumer_topics(
    prefix: str, security: Mapping[str, str], names: Sequence[tuple[str, str]]
) -> list[TopicSpec]:
    """The specs of one consumer's `(role, name)` topics (empty names left out) from its
    `<prefix>_*` settings; none without `<prefix>_BOOTSTRAP_SERVERS`."""
    bootstrap_servers = getattr(settings, f"{prefix}_BOOTSTRAP_SERVERS")
    if not bootstrap_servers:
        return []
    cluster = Cluster(bootstrap_servers, tuple(sorted(security.items())))
    replication = getattr(settings, f"{prefix}_TOPIC_REPLICATION")
    partitions = getattr(settings, f"{prefix}_TOPIC_PARTITIONS")
    retention_ms = getattr(settings, f"{prefix}_TOPIC_RETENTION_MS")
    dlq_retention_ms = getattr(settings, f"{prefix}_DLQ_TOPIC_RETENTION_MS")
    return [
        TopicSpec(
            name=name,
            partitions=1 if role == "dlq" else partitions,
            replication=replication,
            retention_ms=dlq_retention_ms if role == "dlq" else retention_ms,
            prefix=prefix,
            role=role,  # type: ignore[arg-type]
            cluster=cluster,
        )
        for role, name in names
        if name
    ]


def configured_topics(*, include_all: bool = False) -> list[TopicSpec]:
    """Every topic of every consumer configured to run (module docstring), deduplicated by
    cluster and name (the first consumer naming a topic wins)."""
    found = _consumer_topics(
        "TRADING_ORDER_FEED",
        settings.TRADING_ORDER_FEED_KAFKA,
        [
            ("topic_v2", settings.TRADING_ORDER_FEED_TOPIC_V2),
            ("topic", settings.TRADING_ORDER_FEED_TOPIC),
            ("dlq", settings.TRADING_ORDER_FEED_DLQ_TOPIC),
        ],
    )
    if include_all or settings.TRADING_SIGNAL_SOURCE == "kafka":
        found += _consumer_topics(
            "TRADING_SIGNAL_KAFKA",
            settings.TRADING_SIGNAL_KAFKA,
            [
                ("topic", settings.TRADING_SIGNAL_KAFKA_TOPIC),
                ("dlq", settings.TRADING_SIGNAL_KAFKA_DLQ_TOPIC),
            ],
        )
    if include_all or settings.WHITEPAPER_KAFKA_ENABLED:
        found += _consumer_topics(
            "WHITEPAPER_KAFKA",
            settings.WHITEPAPER_KAFKA,
            [
                ("topic", settings.WHITEPAPER_KAFKA_TOPIC),
                ("dlq", settings.WHITEPAPER_KAFKA_DLQ_TOPIC),
            ],
        )
    specs: dict[tuple[Cluster, str], TopicSpec] = {}
    for spec in found:
        specs.setdefault((spec.cluster, spec.name), spec)
    return list(specs.values())


# -- the broker's side -------------------------------------------------------------------------
class TopicMissing(KafkaException):
    """A topic our client needs does not exist; it is never auto-created. A KafkaException, so
    a caller that already survives a Kafka outage (the trade cycle's feed flush) survives this
    one too, with the records left where they were."""

    def __init__(self, topics: Iterable[str], *, bootstrap_servers: str, user: str) -> None:
        self.topics = sorted(topics)
        names = ", ".join(repr(t) for t in self.topics)
        self.message = (
            f"{user}: Kafka topic {names} does not exist on {bootstrap_servers}; {ENSURE_HINT} "
            "(topics are never auto-created)"
        )
        super().__init__(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, self.message))

    def __str__(self) -> str:
        return self.message


class MetadataClient(Protocol):
    """What `topics_require` needs of a Consumer, Producer or AdminClient."""

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any: ...


def topic_exists(client: MetadataClient, topic: str, *, timeout: float) -> bool:
    """Whether the broker knows `topic` (KafkaException when it cannot be asked). With
    `allow.auto.create.topics=false` on the client, asking does not create it."""
    metadata = client.list_topics(topic, timeout=timeout).topics.get(topic)
    if metadata is None:
        return False
    error = metadata.error
    return error is None or error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART


_known: set[tuple[str, str]] = set()  # (bootstrap servers, topic) seen to exist in this process
_known_lock = threading.Lock()


def topics_require(
    client: MetadataClient,
    topics: Iterable[str],
    *,
    bootstrap_servers: str,
    user: str,
    timeout: float = TOPIC_CHECK_TIMEOUT_SECONDS,
) -> None:
    """Raise `TopicMissing` naming every topic of `topics` the broker does not know. A positive
    answer is remembered for the process (a producer checks once, not per record)."""
    wanted = [t for t in dict.fromkeys(topics) if t]
    with _known_lock:
        unknown = [t for t in wanted if (bootstrap_servers, t) not in _known]
    missing = [t for t in unknown if not topic_exists(client, t, timeout=timeout)]
    with _known_lock:
        _known.update((bootstrap_servers, t) for t in unknown if t not in missing)
    if missing:
        raise TopicMissing(missing, bootstrap_servers=bootstrap_servers, user=user)


def topics_forget() -> None:
    """Forget the topics seen to exist (tests delete topics between cases)."""
    with _known_lock:
        _known.clear()


@dataclass
class _Observed:
    partitions: int
    replication: int
    retention_ms: int | None = None
    notes: list[str] = field(default_factory=list)


def _observe(admin: AdminClient, specs: Sequence[TopicSpec]) -> dict[str, _Observed]:
    """What the broker holds of each spec's topic (absent ones left out)."""
    observed: dict[str, _Observed] = {}
    for spec in specs:
        meta = admin.list_topics(spec.name, timeout=TOPIC_CHECK_TIMEOUT_SECONDS).topics.get(
            spec.name
        )
        if meta is None or (
            meta.error is not None and meta.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
        ):
            continue
        replicas = [len(p.replicas) for p in meta.partitions.values()]
        observed[spec.name] = _Observed(len(meta.partitions), min(replicas, default=0))
    if observed:
        resources = [ConfigResource(ResourceType.TOPIC, name) for name in observed]
        for resource, future in admin.describe_configs(resources).items():
            try:
                entry = future.result(TOPIC_CHECK_TIMEOUT_SECONDS).get("retention.ms")
            except KafkaException as exc:
                observed[resource.name].notes.append(f"retention.ms unreadable: {exc}")
                continue
            if entry is not None and entry.value is not None:
                observed[resource.name].retention_ms = int(entry.value)
    return observed


def _drift(spec: TopicSpec, seen: _Observed) -> list[str]:
    notes = list(seen.notes)
    if seen.partitions < spec.partitions:
        notes.append(
            f"fewer partitions than {spec.partitions_setting}={spec.partitions}: "
            "`kafka_topics ensure --grow-partitions` adds them (keys then move to other "
            "partitions)"
        )
    elif seen.partitions > spec.partitions:
        notes.append(
            f"more partitions than {spec.partitions_setting}={spec.partitions}: Kafka cannot "
            "remove partitions; raise the setting to match"
        )
    if seen.replication != spec.replication:
        notes.append(
            f"replication {seen.replication} differs from {spec.prefix}_TOPIC_REPLICATION="
            f"{spec.replication} (changed with a partition reassignment, not here)"
        )
    if seen.retention_ms is not None and seen.retention_ms != spec.retention_ms:
        notes.append(
            f"retention.ms {seen.retention_ms} differs from {spec.retention_setting}="
            f"{spec.retention_ms} (kafka-configs --alter changes it)"
        )
    return notes


def _report(spec: TopicSpec, seen: _Observed | None, status: Status | None = None) -> TopicReport:
    if seen is None:
        return TopicReport(spec, status or "missing", notes=(ENSURE_HINT,) if not status else ())
    notes = _drift(spec, seen)
    return TopicReport(
        spec,
        status or ("drift" if notes else "ok"),
        seen.partitions,
        seen.replication,
        seen.retention_ms,
        tuple(notes),
    )


def topics_check(specs: Sequence[TopicSpec]) -> list[TopicReport]:
    """Each spec against the broker: ok, missing or drift. Changes nothing."""
    reports: list[TopicReport] = []
    for cluster, group in _by_cluster(specs).items():
        admin = kafka_admin(cluster.admin_config())
        observed = _observe(admin, group)
        reports += [_report(spec, observed.get(spec.name)) for spec in group]
    return reports


def topics_ensure(
    specs: Sequence[TopicSpec], *, grow_partitions: bool = False
) -> list[TopicReport]:
    """Create the missing topics as configured; with `grow_partitions`, add the partitions a
    topic lacks. Reports drift it does not fix; never deletes or shrinks anything."""
    reports: list[TopicReport] = []
    for cluster, group in _by_cluster(specs).items():
        admin = kafka_admin(cluster.admin_config())
        observed = _observe(admin, group)
        created = _create(admin, [s for s in group if s.name not in observed])
        grown = _grow(admin, [s for s in group if s.name in observed]) if grow_partitions else {}
        after = _observe(admin, [s for s in group if s.name in created or s.name in grown])
        for spec in group:
            if spec.name in created:
                error = created[spec.name]
                reports.append(
                    TopicReport(spec, "error", notes=(error,))
                    if error
                    else _report(spec, after.get(spec.name), "created")
                )
            elif spec.name in grown:
                error = grown[spec.name]
                report = _report(spec, after.get(spec.name) or observed[spec.name])
                reports.append(
                    TopicReport(spec, "error", report.partitions, notes=(error, *report.notes))
                    if error
                    else TopicReport(**{**report.__dict__, "status": "grown"})
                )
            else:
                reports.append(_report(spec, observed.get(spec.name)))
    return reports


def _by_cluster(specs: Sequence[TopicSpec]) -> dict[Cluster, list[TopicSpec]]:
    groups: dict[Cluster, list[TopicSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.cluster, []).append(spec)
    return groups


def _create(admin: AdminClient, specs: Sequence[TopicSpec]) -> dict[str, str]:
    """Create `specs`' topics: name -> "" (created) or the error."""
    if not specs:
        return {}
    brokers = len(admin.list_topics(timeout=TOPIC_CHECK_TIMEOUT_SECONDS).brokers)
    result: dict[str, str] = {}
    wanted: list[NewTopic] = []
    for spec in specs:
        if spec.replication > brokers:
            result[spec.name] = (
                f"{spec.prefix}_TOPIC_REPLICATION={spec.replication} needs {spec.replication} "
                f"brokers; the cluster has {brokers}"
            )
            continue
        wanted.append(
            NewTopic(
                spec.name,
                num_partitions=spec.partitions,
                replication_factor=spec.replication,
                config={"retention.ms": str(spec.retention_ms)},
            )
        )
    for name, future in admin.create_topics(wanted).items() if wanted else ():
        try:
            future.result(TOPIC_CHECK_TIMEOUT_SECONDS)
        except KafkaException as exc:
            # created meanwhile by another `ensure`: that is what we wanted
            code = exc.args[0].code() if exc.args else None
            result[name] = "" if code == KafkaError.TOPIC_ALREADY_EXISTS else str(exc)
        else:
            result[name] = ""
    return result


def _grow(admin: AdminClient, specs: Sequence[TopicSpec]) -> dict[str, str]:
    """Raise the partition count of the topics that have fewer than configured: name -> "" or
    the error."""
    observed = _observe(admin, specs)
    grow = [s for s in specs if observed[s.name].partitions < s.partitions]
    if not grow:
        return {}
    result: dict[str, str] = {}
    futures = admin.create_partitions([NewPartitions(s.name, s.partitions) for s in grow])
    for name, future in futures.items():
        try:
            future.result(TOPIC_CHECK_TIMEOUT_SECONDS)
        except KafkaException as exc:
            result[name] = str(exc)
        else:
            result[name] = ""
    return result
