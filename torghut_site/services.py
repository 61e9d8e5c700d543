"""Writes for operations state: process heartbeats, dead-lettered messages."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.utils import timezone

from torghut_site.kafka.messages import DeadLetter, RawMessage
from torghut_site.metrics import HEARTBEATS
from torghut_site.models import DeadLetterMessage, ProcessHeartbeat


def default_process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def heartbeat_record(
    *,
    kind: str,
    name: str | None = None,
    details: dict[str, Any] | None = None,
    started_at: datetime | None = None,
) -> ProcessHeartbeat:
    """Upsert the (kind, name) heartbeat row; safe to call from many processes at once."""
    now = timezone.now()
    name = name or default_process_name()
    defaults: dict[str, Any] = {"pid": os.getpid(), "last_seen_at": now, "details": details or {}}
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
