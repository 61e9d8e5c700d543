"""Celery tasks of the whitepaper workflow: thin, idempotent, taking ids."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from whitepapers.services.dispatch import DispatchError, agentrun_dispatch
from whitepapers.services.intake import (
    EVENT_TASK_SOFT_TIME_LIMIT,
    EVENT_TASK_TIME_LIMIT,
    StorageUnavailable,
    github_event_process,
)
from whitepapers.services.sweep import whitepaper_sweep_run

logger = logging.getLogger(__name__)


@shared_task(
    ignore_result=True,
    # the event's claim (EVENT_CLAIM_SECONDS) outlives the hard limit
    soft_time_limit=EVENT_TASK_SOFT_TIME_LIMIT,
    time_limit=EVENT_TASK_TIME_LIMIT,
    # object storage unreachable: the event stays pending and comes back with backoff; the
    # event's own attempt count (WHITEPAPER_STORAGE_RETRY_ATTEMPTS) decides when it fails
    autoretry_for=(OperationalError, InterfaceError, StorageUnavailable),
    retry_backoff=True,
    retry_backoff_max=settings.WHITEPAPER_STORAGE_RETRY_BACKOFF_MAX_SECONDS,
    retry_jitter=True,
    max_retries=max(10, settings.WHITEPAPER_STORAGE_RETRY_ATTEMPTS),
)
def process_github_event(event_id: int) -> dict[str, Any]:
    """Apply the intake rules to a recorded GitHub event (download, store, record, dispatch)."""
    return github_event_process(event_id, retry_unavailable_storage=True).as_json()


@shared_task(
    ignore_result=True,
    soft_time_limit=300,
    time_limit=330,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=10,
)
def dispatch_agentrun(run_id: str) -> dict[str, Any]:
    """Submit the run's next AgentRun attempt; a failure is recorded on the run, not raised."""
    try:
        return agentrun_dispatch(run_id=run_id, requested_by="torghut").as_json()
    except DispatchError as exc:
        logger.warning("dispatch of %s failed: %s %s", run_id, exc.code, exc.message)
        return {"run_id": run_id, "error": exc.code, "message": exc.message}


@shared_task(ignore_result=True, soft_time_limit=60, time_limit=90)
def whitepaper_sweep() -> dict[str, int]:
    """Re-queue events still pending and auto-dispatch runs still queued (lost tasks)."""
    return whitepaper_sweep_run()
