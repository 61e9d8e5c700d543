from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from django.conf import settings

from torghut_site import services
from torghut_site.models import ProcessHeartbeat


@shared_task(bind=True, ignore_result=True, soft_time_limit=20, time_limit=30)
def worker_heartbeat(
    self: Task[Any, Any], hostname: str | None = None, event: str = "beat"
) -> None:
    """Record that a worker is consuming the queue (sent by beat and at worker start), under the
    nodename of the worker that ran it (`-n w1@%h`: give every worker on a host its own)."""
    name = hostname or self.request.hostname or None
    services.heartbeat_record(
        kind=ProcessHeartbeat.Kind.CELERY_WORKER,
        name=name,
        interval_seconds=float(settings.CELERY_WORKER_HEARTBEAT_SECONDS),
        details={"event": event},
    )


@shared_task(ignore_result=True, soft_time_limit=60, time_limit=90)
def heartbeats_prune() -> int:
    """Delete heartbeat rows dead for longer than TORGHUT_HEARTBEAT_RETENTION_SECONDS."""
    return services.heartbeats_prune(retention_seconds=settings.TORGHUT_HEARTBEAT_RETENTION_SECONDS)


@shared_task(ignore_result=False, soft_time_limit=10, time_limit=20)
def ping() -> str:
    """Health task: a round trip through the broker to a worker."""
    return "pong"
