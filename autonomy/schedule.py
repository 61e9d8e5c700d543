"""Autonomy entries of the Celery beat schedule (registered by `AutonomyConfig.ready()`); the
lane's tick itself is `autonomy.services.schedule`."""

from __future__ import annotations

from django.conf import settings

from torghut_site.schedule import ScheduleEntries, every


def autonomy_schedule() -> ScheduleEntries:
    return [
        # the research lane (a no-op while TRADING_AUTONOMY_ENABLED is off, read on every tick)
        (
            "autonomy-lane",
            every(
                float(settings.TRADING_AUTONOMY_INTERVAL_SECONDS),
                "autonomy.tasks.autonomy_lane_tick",
            ),
        ),
        (
            "autonomy-evidence-continuity",
            every(
                float(settings.TRADING_EVIDENCE_CONTINUITY_INTERVAL_SECONDS),
                "autonomy.tasks.evidence_continuity_check",
            ),
        ),
    ]
