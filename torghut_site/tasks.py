from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from torghut_site.models import ProcessHeartbeat
from torghut_site.services import heartbeat_record


@shared_task(bind=True, ignore_result=True, soft_time_limit=20, time_limit=30)
def worker_heartbeat(
    self: Task[Any, Any], hostname: str | None = None, event: str = "beat"
) -> None:
    """Record that a worker is consuming the queue (sent by beat and at worker start)."""
    name = hostname or self.request.hostname or None
    heartbeat_record(kind=ProcessHeartbeat.Kind.CELERY_WORKER, name=name, details={"event": event})


@shared_task(ignore_result=False, soft_time_limit=10, time_limit=20)
def ping() -> str:
    """Health task: a round trip through the broker to a worker."""
    return "pong"
