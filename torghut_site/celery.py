"""The Celery app: JSON only, late acks with redelivery on worker loss, beat schedule in code
(composed by the beat scheduler, `torghut_site.beat`, from `torghut_site.schedule`)."""

from __future__ import annotations

import os
import sys
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "torghut_site.settings")

app = Celery("torghut")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _load_settings_or_exit() -> None:
    from django.conf import settings

    from torghut_site.env import ConfigError

    try:
        settings.INSTALLED_APPS  # noqa: B018 - forces the settings module to load and validate
    except ConfigError as exc:
        sys.stderr.write(exc.render() + "\n")
        raise SystemExit(2) from exc


@signals.worker_ready.connect
def _worker_ready(sender: Any = None, **kwargs: Any) -> None:
    from torghut_site import tasks
    from torghut_site.metrics import metrics_exporter_start

    metrics_exporter_start()  # TORGHUT_METRICS_PORT: a worker on its own host is scraped here
    hostname = getattr(sender, "hostname", None)
    tasks.worker_heartbeat.delay(hostname=hostname, event="ready")


@signals.task_prerun.connect
def _bind_task_id(task_id: str | None = None, **kwargs: Any) -> None:
    from torghut_site.logging import bind_request_id

    if task_id:
        bind_request_id(f"task:{task_id}")


# `celery -A torghut_site worker|beat`: report bad configuration as one message, not a traceback
if sys.argv and os.path.basename(sys.argv[0]) == "celery":
    _load_settings_or_exit()
