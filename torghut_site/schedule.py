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
    # the whitepaper sweep re-queues lost processing/dispatch tasks (a no-op when the workflow
    # is off, so WHITEPAPER_WORKFLOW_ENABLED takes effect without restarting beat)
    entries.append(
        (
            "whitepaper-sweep",
            every(
                max(30.0, settings.WHITEPAPER_SWEEP_AFTER_SECONDS / 2),
                "whitepapers.tasks.whitepaper_sweep",
            ),
        )
    )
    # the research lane (a no-op while TRADING_AUTONOMY_ENABLED is off, read on every tick)
    entries.append(
        (
            "autonomy-lane",
            every(
                float(settings.TRADING_AUTONOMY_INTERVAL_SECONDS),
                "autonomy.tasks.autonomy_lane_tick",
            ),
        )
    )
    entries.append(
        (
            "autonomy-evidence-continuity",
            every(
                float(settings.TRADING_EVIDENCE_CONTINUITY_INTERVAL_SECONDS),
                "autonomy.tasks.evidence_continuity_check",
            ),
        )
    )
    return entries
