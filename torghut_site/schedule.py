"""The Celery beat schedule, declared in code. Every entry expires within its period."""

from __future__ import annotations

from typing import Any

from django.conf import settings


def every(seconds: float, task: str, kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """A periodic entry whose message expires after one period (a late run is skipped)."""
    return {
        "task": task,
        "schedule": seconds,
        "kwargs": kwargs or {},
        "options": {"expires": seconds},
    }


def beat_schedule() -> dict[str, dict[str, Any]]:
    heartbeat = float(settings.CELERY_WORKER_HEARTBEAT_SECONDS)
    schedule: dict[str, dict[str, Any]] = {
        "ops-worker-heartbeat": every(heartbeat, "torghut_site.tasks.worker_heartbeat"),
    }
    schedule.update(dict(_app_schedules()))
    return schedule


def _app_schedules() -> list[tuple[str, dict[str, Any]]]:
    entries: list[tuple[str, dict[str, Any]]] = []
    from trading.schedule import trading_schedule

    entries.extend(trading_schedule())
    return entries
