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
