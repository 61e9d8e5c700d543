"""Celery beat scheduler that composes the beat schedule and records beat's own heartbeat."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.beat import PersistentScheduler
from django.conf import settings
from django.db import close_old_connections

from torghut_site.schedule import beat_schedule

logger = logging.getLogger(__name__)

BEAT_NAME = "celery-beat"


class HeartbeatScheduler(PersistentScheduler):
    _last_heartbeat = 0.0

    def setup_schedule(self) -> None:
        # the apps register their entries in AppConfig.ready(); beat has loaded Django by now
        # (Celery's Django fixup), unlike when the app's configuration is first read
        self.app.conf.beat_schedule = beat_schedule()
        super().setup_schedule()

    def tick(self, *args: Any, **kwargs: Any) -> float:
        now = time.monotonic()
        if now - self._last_heartbeat >= settings.CELERY_WORKER_HEARTBEAT_SECONDS:
            self._last_heartbeat = now
            self._write_heartbeat()
        delay = float(super().tick(*args, **kwargs))
        # wake up in time for the next heartbeat even when no task is due
        return min(delay, float(settings.CELERY_WORKER_HEARTBEAT_SECONDS))

    def _write_heartbeat(self) -> None:
        from torghut_site.models import ProcessHeartbeat
        from torghut_site.services import heartbeat_record

        try:
            close_old_connections()
            # one beat per deployment: a fixed name, so a restarted beat takes its row back
            heartbeat_record(
                kind=ProcessHeartbeat.Kind.CELERY_BEAT,
                name=BEAT_NAME,
                interval_seconds=float(settings.CELERY_WORKER_HEARTBEAT_SECONDS),
            )
        except Exception:  # a DB blip must not stop the scheduler from sending tasks
            logger.exception("beat heartbeat failed")
