"""Writes for operations state: process heartbeats."""

from __future__ import annotations

import os
import socket
from datetime import datetime
from typing import Any

from django.utils import timezone

from torghut_site.metrics import HEARTBEATS
from torghut_site.models import ProcessHeartbeat


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
