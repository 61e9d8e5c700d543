"""Writes for operations state: process heartbeats, dead-lettered messages, consumer-group
probes."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from torghut_site.kafka.messages import DeadLetter, RawMessage
from torghut_site.metrics import HEARTBEATS
from torghut_site.models import (
    ConsumerGroupPartition,
    ConsumerGroupProbe,
    DeadLetterMessage,
    ProcessHeartbeat,
)

if TYPE_CHECKING:
    from torghut_site.kafka.probe import PartitionSample


# a row unseen for this many of its writer's intervals reads `dead`
HEARTBEAT_EXPIRY_INTERVALS = 3


def instance_name() -> str:
    """This process's stable identity: TORGHUT_INSTANCE_NAME, else the hostname."""
    return str(settings.TORGHUT_INSTANCE_NAME)


def heartbeat_record(
    *,
    kind: str,
    interval_seconds: float,
    name: str | None = None,
    details: dict[str, Any] | None = None,
    started_at: datetime | None = None,
) -> ProcessHeartbeat:
    """Upsert the (kind, name) heartbeat row; safe to call from many processes at once.

    `name` is the stable identity (default `instance_name()`); the row also keeps this process's
    pid and hostname, and expires 3 `interval_seconds` (the writer's period) after this write."""
    now = timezone.now()
    name = name or instance_name()
    defaults: dict[str, Any] = {
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "last_seen_at": now,
        "interval_seconds": interval_seconds,
        "expires_at": now + timedelta(seconds=HEARTBEAT_EXPIRY_INTERVALS * interval_seconds),
        "details": details or {},
    }
    if started_at is not None:
        defaults["started_at"] = started_at
    heartbeat, _ = ProcessHeartbeat.objects.update_or_create(
        kind=kind,
        name=name,
        defaults=defaults,
        create_defaults={**defaults, "started_at": started_at or now},
    )
    HEARTBEATS.labels(kind=kind).inc()
    return heartbeat


class InstanceNameInUse(RuntimeError):
    """A live process on this host already runs under this (kind, name)."""


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (signal 0 probes, sends nothing)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def heartbeat_claim(*, kind: str, name: str, interval_seconds: float) -> ProcessHeartbeat:
    """Take the (kind, name) heartbeat row for this process at start-up, or refuse.

    Refused (`InstanceNameInUse`) while the row names another pid on this host that is alive,
    has not stopped and still heartbeats (its row has not expired): two consumers with one name
    share one static `group.instance.id` and fence each other out of the group. A row of a dead
    pid, of another host, of a stopped process or past its expiry is taken over (a restarted
    container reuses small pids: the old row's pid can name an unrelated process). The row is
    locked while it is checked, so two processes starting at once cannot both pass."""
    hostname = socket.gethostname()
    with transaction.atomic():
        row = ProcessHeartbeat.objects.select_for_update().filter(kind=kind, name=name).first()
        if (
            row is not None
            and row.hostname == hostname
            and row.pid != os.getpid()
            and row.details.get("state") != "stopped"
            and row.expires_at > timezone.now()
            and pid_alive(row.pid)
        ):
            raise InstanceNameInUse(
                f"{kind} {name!r} is already running on {hostname} as pid {row.pid}: stop it, "
                "or give this process another name (--name or TORGHUT_INSTANCE_NAME)"
            )
        return heartbeat_record(
            kind=kind,
            name=name,
            interval_seconds=interval_seconds,
            details={"state": "starting"},
            started_at=timezone.now(),
        )


def heartbeats_prune(*, retention_seconds: float, now: datetime | None = None) -> int:
    """Delete heartbeat rows dead for longer than the retention; how many went."""
    now = now or timezone.now()
    deleted, _ = ProcessHeartbeat.objects.filter(
        expires_at__lt=now - timedelta(seconds=retention_seconds)
    ).delete()
    return deleted


def dead_letters_record(*, consumer: str, letters: Sequence[DeadLetter]) -> int:
    """Keep refused messages; a redelivered batch does not store them twice."""
    rows = [
        DeadLetterMessage(
            consumer=consumer,
            topic=letter.message.topic,
            partition=letter.message.partition,
            offset=letter.message.offset,
            key=letter.message.key,
            value=letter.message.value,
            reason=letter.reason,
            error=letter.error,
        )
        for letter in letters
    ]
    created = DeadLetterMessage.objects.bulk_create(rows, ignore_conflicts=True)
    return len(created)


def dead_letters_mark_published(*, consumer: str, messages: Sequence[RawMessage]) -> int:
    updated = 0
    for message in messages:
        updated += DeadLetterMessage.objects.filter(
            consumer=consumer,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            published_at__isnull=True,
        ).update(published_at=timezone.now())
    return updated


def _partition_row(
    group: str, sample: PartitionSample, prev: ConsumerGroupPartition | None, now: datetime
) -> ConsumerGroupPartition:
    """The partition's new sample, with the time each value last changed carried over."""
    committed_moved = prev is None or prev.committed != sample.committed
    return ConsumerGroupPartition(
        group=group,
        topic=sample.topic,
        partition=sample.partition,
        committed=sample.committed,
        end_offset=sample.end,
        lag=sample.lag,
        assigned=sample.assigned,
        probed_at=now,
        committed_changed_at=now if committed_moved or prev is None else prev.committed_changed_at,
        end_changed_at=(
            now if prev is None or prev.end_offset != sample.end else prev.end_changed_at
        ),
        # progress: the committed offset moved, or nothing waits behind it
        progress_at=now if committed_moved or sample.lag == 0 or prev is None else prev.progress_at,
        unassigned_since=(
            None
            if sample.assigned
            else (prev.unassigned_since if prev and prev.unassigned_since else now)
        ),
    )


PARTITION_FIELDS = [
    "committed",
    "end_offset",
    "lag",
    "assigned",
    "probed_at",
    "committed_changed_at",
    "end_changed_at",
    "progress_at",
    "unassigned_since",
]


def consumer_group_probe_record(
    *,
    group: str,
    topics: tuple[str, ...],
    bootstrap_servers: str,
    security: Mapping[str, str] | None = None,
    timeout_seconds: float,
) -> ConsumerGroupProbe:
    """Probe the group on Kafka (bounded by `timeout_seconds`) and keep the sample: the group's
    row says whether Kafka answered; each partition's row keeps its offsets and when they last
    moved. A failed probe leaves the partitions' last samples as they were."""
    # imported here: only a process that probes loads the Kafka client
    from torghut_site.kafka.probe import ProbeFailed, consumer_group_probe

    try:
        sample = consumer_group_probe(
            bootstrap_servers=bootstrap_servers,
            group=group,
            topics=topics,
            security=security,
            timeout_seconds=timeout_seconds,
        )
    except ProbeFailed as exc:
        now = timezone.now()
        probe, _ = ConsumerGroupProbe.objects.update_or_create(
            group=group,
            defaults={"probed_at": now, "reachable": False, "error": str(exc)[:500]},
        )
        return probe
    now = timezone.now()
    with transaction.atomic():
        previous = {
            (row.topic, row.partition): row
            for row in ConsumerGroupPartition.objects.select_for_update()
            .filter(group=group)
            .order_by("pk")
        }
        rows = [
            _partition_row(group, s, previous.get((s.topic, s.partition)), now)
            for s in sample.partitions
        ]
        ConsumerGroupPartition.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["group", "topic", "partition"],
            update_fields=PARTITION_FIELDS,
        )
        gone = set(previous) - {(s.topic, s.partition) for s in sample.partitions}
        for topic, partition in gone:  # a topic no longer probed, or recreated smaller
            previous[(topic, partition)].delete()
        probe, _ = ConsumerGroupProbe.objects.update_or_create(
            group=group,
            defaults={
                "probed_at": now,
                "reachable": True,
                "error": "",
                "state": sample.state[:32],
                "members": sample.members,
                "missing_topics": sample.missing_topics,
            },
        )
    return probe
