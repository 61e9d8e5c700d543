"""The Celery beat schedule, declared in code. Every entry expires within its period.

Each app owns its entries (`trading/schedule.py`, `whitepapers/schedule.py`,
`autonomy/schedule.py`) and registers them from its `AppConfig.ready()` with
`schedule_register`; `beat_schedule()` composes the site's own heartbeat entry with the
registered ones, so this ground floor names no app. The beat scheduler
(`torghut_site.beat.HeartbeatScheduler`) reads it once Django's apps are ready."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.conf import settings

ScheduleEntries = list[tuple[str, dict[str, Any]]]

# app label -> the app's entries, read when the schedule is composed (settings read fresh)
_providers: dict[str, Callable[[], ScheduleEntries]] = {}


def every(seconds: float, task: str, kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """A periodic entry whose message expires after one period (a late run is skipped)."""
    return {
        "task": task,
        "schedule": seconds,
        "kwargs": kwargs or {},
        "options": {"expires": seconds},
    }


def schedule_register(app_label: str, entries: Callable[[], ScheduleEntries]) -> None:
    """Add an app's beat entries (idempotent: a second call for the label replaces the first)."""
    _providers[app_label] = entries


def beat_schedule() -> dict[str, dict[str, Any]]:
    # the apps register in ready(): composing earlier would silently drop their entries
    apps.check_apps_ready()
    heartbeat = float(settings.CELERY_WORKER_HEARTBEAT_SECONDS)
    schedule: dict[str, dict[str, Any]] = {
        "ops-worker-heartbeat": every(heartbeat, "torghut_site.tasks.worker_heartbeat"),
        # dead heartbeat rows go after TORGHUT_HEARTBEAT_RETENTION_SECONDS (checked hourly at most)
        "ops-heartbeats-prune": every(
            min(3600.0, float(settings.TORGHUT_HEARTBEAT_RETENTION_SECONDS)),
            "torghut_site.tasks.heartbeats_prune",
        ),
    }
    for entries in _providers.values():
        schedule.update(dict(entries()))
    return schedule
