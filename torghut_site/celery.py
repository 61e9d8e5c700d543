"""The Celery app: JSON only, late acks with redelivery on worker loss, beat schedule in code
(composed by the beat scheduler, `torghut_site.beat`, from `torghut_site.schedule`)."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from celery import Celery, bootsteps, signals

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


def _write_worker_heartbeat(nodename: str, state: str = "running") -> None:
    from django.conf import settings
    from django.db import close_old_connections

    from torghut_site.models import ProcessHeartbeat
    from torghut_site.services import heartbeat_record

    try:
        close_old_connections()
        heartbeat_record(
            kind=ProcessHeartbeat.Kind.CELERY_WORKER,
            name=nodename,
            interval_seconds=float(settings.CELERY_WORKER_HEARTBEAT_SECONDS),
            details={"event": "alive", "state": state},
        )
    except Exception:  # a DB blip must not stop the worker; a missing heartbeat is the alert
        logging.getLogger(__name__).exception("worker heartbeat failed")


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Every worker writes its own row (its nodename, `-n w1@%h`) each
    CELERY_WORKER_HEARTBEAT_SECONDS from its main process: beat's `worker_heartbeat` task reaches
    one worker of many, and a row unseen for 3 intervals reads `dead`. A clean shutdown marks the
    row `stopped`."""

    requires = ("celery.worker.components:Timer",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        self.tref: Any = None
        super().__init__(parent, **kwargs)

    def start(self, parent: Any) -> None:
        from django.conf import settings

        self.tref = parent.timer.call_repeatedly(
            float(settings.CELERY_WORKER_HEARTBEAT_SECONDS),
            _write_worker_heartbeat,
            (parent.hostname,),
            priority=10,
        )

    def stop(self, parent: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
            _write_worker_heartbeat(parent.hostname, state="stopped")


app.steps["worker"].add(WorkerHeartbeat)


@signals.worker_process_init.connect
def _sweep_dead_processes(**kwargs: Any) -> None:
    # a pool child starts: gauges of processes that died on this host (kill -9) go
    from torghut_site.metrics import multiprocess_sweep

    multiprocess_sweep()


@signals.worker_process_shutdown.connect
def _pool_child_exit(pid: int | None = None, **kwargs: Any) -> None:
    # a pool child exits (its atexit handlers do not run): its live gauges go
    from torghut_site.metrics import mark_process_dead

    mark_process_dead(pid or os.getpid())


@signals.worker_shutdown.connect
def _worker_exit(**kwargs: Any) -> None:
    from torghut_site.metrics import mark_process_dead

    mark_process_dead(os.getpid())


@signals.task_prerun.connect
def _bind_task_id(task_id: str | None = None, **kwargs: Any) -> None:
    from torghut_site.logging import bind_request_id

    if task_id:
        bind_request_id(f"task:{task_id}")


# `celery -A torghut_site worker|beat`: report bad configuration as one message, not a traceback
if sys.argv and os.path.basename(sys.argv[0]) == "celery":
    _load_settings_or_exit()
