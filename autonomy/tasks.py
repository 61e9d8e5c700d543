"""Celery tasks of the research lane (thin: the work is in `autonomy.services`)."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from celery import shared_task
from django.utils import timezone

from autonomy.services.governance import evidence_continuity_check
from autonomy.services.replay_check import last_closed_session, replay_check_run
from autonomy.services.schedule import lane_tick
from autonomy.services.sweeps import sweep_chunk_run, sweep_fail, sweep_finalize
from autonomy.sweep import SweepInputError

logger = logging.getLogger(__name__)


@shared_task(name="autonomy.tasks.autonomy_lane_tick", ignore_result=True)
def autonomy_lane_tick() -> dict[str, Any]:
    """One scheduled lane run over the recent signals (a no-op while autonomy is disabled)."""
    result = lane_tick(now=timezone.now())
    run = result.lane_run.run.run_id if result.lane_run else ""
    if result.ran:
        logger.info("autonomy lane tick: %s %s", result.reason, run)
    return {"ran": result.ran, "reason": result.reason, "run_id": run}


@shared_task(name="autonomy.tasks.evidence_continuity_check", ignore_result=True)
def evidence_continuity_task() -> dict[str, Any]:
    """The daily evidence-continuity audit (a no-op while TRADING_EVIDENCE_CONTINUITY_ENABLED is
    off, read on every run)."""
    from torghut_site.flags import flag_enabled

    if not flag_enabled("TRADING_EVIDENCE_CONTINUITY_ENABLED"):
        return {"ran": False}
    report = evidence_continuity_check()
    if not report.passed:
        logger.warning("evidence continuity: %s", report.failed_runs)
    return {"ran": True, "passed": report.passed, "failed_runs": report.failed_runs}


@shared_task(
    name="autonomy.tasks.replay_check_nightly",
    ignore_result=True,
    soft_time_limit=1800,
    time_limit=1900,
)
def replay_check_nightly(session_date: str = "", account_label: str = "") -> dict[str, Any]:
    """The live-versus-replay check of one session (ISO date; default: the latest New York
    session that has closed) on one lane (default: all). Idempotent: a re-run rewrites the same
    `ReplayCheck` rows."""
    day = date.fromisoformat(session_date) if session_date else last_closed_session(timezone.now())
    checks = replay_check_run(session_date=day, account_label=account_label or None)
    unexplained = sum(c.unexplained_mismatches for c in checks)
    if unexplained:
        logger.warning("replay check %s: %d unexplained mismatches", day, unexplained)
    return {
        "session_date": day.isoformat(),
        "checks": len(checks),
        "unexplained_mismatches": unexplained,
    }


# A sweep's chunks (`autonomy.services.sweeps`): ids only, late acks with redelivery when the
# worker dies (the project default, repeated here because these tasks rely on it), on the
# `research` queue (CELERY_TASK_ROUTES: `autonomy.tasks.*`) so they never wait in front of trading.
@shared_task(
    name="autonomy.tasks.sweep_chunk",
    bind=True,
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=540,
    time_limit=600,
)
def sweep_chunk(self: Any, sweep_id: str, setting_index: int, fold_index: int) -> str:
    """Compute and store one chunk; a chunk already stored is not computed again."""
    try:
        return sweep_chunk_run(
            sweep_id=sweep_id,
            setting_index=setting_index,
            fold_index=fold_index,
            worker=str(self.request.hostname or ""),
        )
    except SweepInputError as exc:  # the sweep cannot be computed: record why, once
        sweep_fail(sweep_id=sweep_id, error=str(exc))
        logger.warning("sweep %s failed: %s", sweep_id, exc)
        return "failed"


@shared_task(
    name="autonomy.tasks.sweep_finalize",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=240,
    time_limit=300,
)
def sweep_finalize_task(sweep_id: str) -> bool:
    """Assemble the report once every chunk is stored (a no-op otherwise or when done)."""
    return sweep_finalize(sweep_id=sweep_id)
