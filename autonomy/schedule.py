"""Autonomy entries of the Celery beat schedule (registered by `AutonomyConfig.ready()`); the
lane's tick itself is `autonomy.services.schedule`."""

from __future__ import annotations

from django.conf import settings

from torghut_site.schedule import ScheduleEntries, every

REPLAY_CHECK_TASK = "autonomy.tasks.replay_check_nightly"
REPLAY_CHECK_PERIOD_SECONDS = 86_400.0


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
        # once a day, the live-versus-replay check of the latest New York session that has
        # closed (idempotent: a second run of the same session rewrites its rows)
        ("autonomy-replay-check", every(REPLAY_CHECK_PERIOD_SECONDS, REPLAY_CHECK_TASK)),
    ]
