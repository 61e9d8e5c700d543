"""Whitepaper entries of the Celery beat schedule (registered by `WhitepapersConfig.ready()`)."""

from __future__ import annotations

from django.conf import settings

from torghut_site.schedule import ScheduleEntries, every


def whitepaper_schedule() -> ScheduleEntries:
    # the whitepaper sweep re-queues lost processing/dispatch tasks (a no-op when the workflow
    # is off, so WHITEPAPER_WORKFLOW_ENABLED takes effect without restarting beat)
    return [
        (
            "whitepaper-sweep",
            every(
                max(30.0, settings.WHITEPAPER_SWEEP_AFTER_SECONDS / 2),
                "whitepapers.tasks.whitepaper_sweep",
            ),
        )
    ]
