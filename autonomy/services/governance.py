"""Drift governance and evidence continuity (docs/compatibility.md#drift-governance).

Drift: every recorded lane run gets one `DriftCheck` from its own evidence (reason codes against
the `TRADING_DRIFT_*` thresholds). The action its codes call for (`retrain` for data/model codes,
`reselection` for performance codes) is `triggered` unless the same action type triggered within
its cooldown (`cooldown_skip`). `retrain` and `reselection` are recorded for operators (and in the
admin); the risk-reducing part is automatic: a *scheduled* run (recent live signals) with a
`TRADING_DRIFT_ROLLBACK_REASON_CODES` code demotes the strategy's promoted champion when
`TRADING_DRIFT_ROLLBACK_ON_PERFORMANCE` is on. A CLI run over a historical file never acts on
what trades. Detection, action and outcome are also written as JSON artifacts next to the run's,
write-once like them.

Evidence continuity: the last `run_limit` finished, non-skipped runs must each have their
candidate, fold metrics, stress metrics and a promotion audit row carrying the run's
recommendation trace id; a report is stored each time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from autonomy.engine.artifacts import artifact_bytes
from autonomy.metrics import (
    DRIFT_ACTIONS,
    DRIFT_CHECKS,
    DRIFT_COOLDOWN_SKIPS,
    DRIFT_INCIDENTS,
    DRIFT_ROLLBACKS,
    EVIDENCE_CONTINUITY_CHECKS,
    EVIDENCE_CONTINUITY_FAILURES,
)
from autonomy.models import (
    DriftAction,
    DriftActionStatus,
    DriftCheck,
    EvidenceContinuityReport,
    LifecycleRole,
    Promotion,
    ResearchCandidate,
    ResearchRun,
    RunStatus,
)
from autonomy.services.artifacts import ArtifactConflictError, artifact_put
from autonomy.services.promotion import promotion_demote
from autonomy.services.strategies import PromotionError
from torghut_site.flags import flag_enabled
from trading.notifications import notify

_COOLDOWN = {
    DriftAction.RETRAIN: "TRADING_DRIFT_RETRAIN_COOLDOWN_SECONDS",
    DriftAction.RESELECTION: "TRADING_DRIFT_RESELECTION_COOLDOWN_SECONDS",
}


def _store(run_id: str, name: str, value: Any) -> str:
    """Write one drift document once (`autonomy.services.artifacts`): its URI, or
    `storage_error:<reason>`. A path that already holds other bytes (a second drift check for a
    run whose ledger was reset) is recorded as an `ArtifactConflict` and left unchanged; the
    check is still recorded, so it is reported here rather than raised."""
    try:
        entry = artifact_put(
            run_id=run_id, path=f"drift/{name}", data=artifact_bytes(value), output_dir=None
        )
    except ArtifactConflictError:
        return "storage_error:storage_object_conflict"
    return str(entry.get("uri") or f"storage_error:{entry.get('storage_error', '')}")


def _drift_rollback(run: ResearchRun, codes: list[str], status: str) -> str:
    """Demote the strategy's champion when a scheduled run's drift codes call for a rollback
    (`TRADING_DRIFT_ROLLBACK_REASON_CODES`, `TRADING_DRIFT_ROLLBACK_ON_PERFORMANCE`): the demoted
    candidate id, `refused:<code>`, or '' when nothing was rolled back."""
    rollback_id = ""
    rollback_codes = set(settings.TRADING_DRIFT_ROLLBACK_REASON_CODES) & set(codes)
    if (
        status != DriftActionStatus.DISABLED
        and run.trigger == "schedule"
        and rollback_codes
        and flag_enabled("TRADING_DRIFT_ROLLBACK_ON_PERFORMANCE")
    ):
        champion = ResearchCandidate.objects.filter(
            strategy_name=run.strategy_name, lifecycle_role=LifecycleRole.CHAMPION
        ).first()
        if champion is not None:
            try:
                promotion_demote(
                    candidate=champion,
                    actor=None,
                    reason=f"drift on run {run.run_id}: {', '.join(sorted(rollback_codes))}",
                    system="drift-governance",
                )
                rollback_id = champion.candidate_id
                DRIFT_ROLLBACKS.inc()
            except PromotionError as exc:
                rollback_id = f"refused:{exc.code}"
    return rollback_id


def drift_record(
    *, run: ResearchRun, drift: Mapping[str, Any], now: datetime | None = None
) -> DriftCheck:
    """The run's drift check (`drift`: the promotion evidence gate's drift block) and its action;
    once per run."""
    existing = DriftCheck.objects.filter(run=run).first()
    if existing is not None:
        return existing
    now = now or timezone.now()
    codes = list(drift.get("reason_codes", []))
    action = drift.get("action", DriftAction.NONE)
    DRIFT_CHECKS.inc()
    if codes:
        DRIFT_INCIDENTS.inc()
    status = DriftActionStatus.NONE
    if not flag_enabled("TRADING_DRIFT_GOVERNANCE_ENABLED"):
        status = DriftActionStatus.DISABLED
    elif action != DriftAction.NONE:
        cooldown = timedelta(seconds=getattr(settings, _COOLDOWN[DriftAction(action)]))
        recent = DriftCheck.objects.filter(
            action=action,
            action_status=DriftActionStatus.TRIGGERED,
            checked_at__gt=now - cooldown,
        ).exists()
        status = DriftActionStatus.COOLDOWN_SKIP if recent else DriftActionStatus.TRIGGERED
        (DRIFT_COOLDOWN_SKIPS if recent else DRIFT_ACTIONS).labels(action=action).inc()
    rollback_id = _drift_rollback(run, codes, status)
    detection = {
        "run_id": run.run_id,
        "strategy_name": run.strategy_name,
        "trigger": run.trigger,
        "checked_at": now.isoformat(),
        **dict(drift),
    }
    action_doc = {"run_id": run.run_id, "action": action, "status": status}
    rolled_back = bool(rollback_id) and not rollback_id.startswith("refused:")
    outcome = {
        "run_id": run.run_id,
        "rollback_triggered": rolled_back,
        "rollback_candidate_id": rollback_id,
    }
    artifacts = {
        "drift/detection.json": _store(run.run_id, "detection.json", detection),
        "drift/action.json": _store(run.run_id, "action.json", action_doc),
        "drift/outcome.json": _store(run.run_id, "outcome.json", outcome),
    }
    check = DriftCheck.objects.create(
        run=run,
        strategy_name=run.strategy_name,
        trigger=run.trigger,
        reason_codes=codes,
        action=action,
        action_status=status,
        rollback_triggered=rolled_back,
        rollback_candidate_id=rollback_id,
        detection=detection,
        artifacts=artifacts,
        checked_at=now,
    )
    if codes:  # a drift incident (torghut_trading_drift_incidents_total): one post per run
        notify("drift_incident", f"drift_incident:{run.run_id}", _drift_payload(check))
    return check


def _drift_payload(check: DriftCheck) -> dict[str, Any]:
    return {
        "run_id": check.run.run_id,
        "strategy_name": check.strategy_name,
        "trigger": check.trigger,
        "reason_codes": check.reason_codes,
        "action": check.action,
        "action_status": check.action_status,
        "rollback_candidate_id": check.rollback_candidate_id,
        "at": check.checked_at,
    }


def evidence_continuity_check(
    *, run_limit: int | None = None, now: datetime | None = None, requested_by: str = ""
) -> EvidenceContinuityReport:
    """Audit the most recent finished runs and record the report (`requested_by`: the user who
    asked for it through the API; empty for the daily task)."""
    limit = min(50, max(1, run_limit or settings.TRADING_EVIDENCE_CONTINUITY_RUN_LIMIT))
    now = now or timezone.now()
    runs = list(
        ResearchRun.objects.filter(status__in=[RunStatus.PASSED, RunStatus.FAILED]).order_by(
            "-started_at", "-pk"
        )[:limit]
    )
    failed: list[dict[str, Any]] = []
    for run in runs:
        missing: list[str] = []
        candidate = run.candidates.first()
        if candidate is None:
            missing.append("research_candidates")
        else:
            if not candidate.fold_metrics.exists():
                missing.append("research_fold_metrics")
            if not candidate.stress_metrics.exists():
                missing.append("research_stress_metrics")
            promotions = Promotion.objects.filter(candidate=candidate)
            if not promotions.exists():
                missing.append("research_promotions")
            elif (
                not promotions.filter(recommendation_trace_id=run.recommendation_trace_id)
                .exclude(recommendation_trace_id="")
                .exists()
            ):
                missing.append("promotion_audit")
        if missing:
            failed.append({"run_id": run.run_id, "missing": missing})
    EVIDENCE_CONTINUITY_CHECKS.inc()
    if failed:
        EVIDENCE_CONTINUITY_FAILURES.inc()
    report = {
        "checked_at": now.isoformat(),
        "run_limit": limit,
        "runs_checked": len(runs),
        "run_ids": [r.run_id for r in runs],
        "failed_runs": failed,
        "passed": not failed,
        "requested_by": requested_by,
    }
    return EvidenceContinuityReport.objects.create(
        checked_at=now,
        run_limit=limit,
        runs_checked=len(runs),
        passed=not failed,
        failed_runs=failed,
        report=report,
    )
