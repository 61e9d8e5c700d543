"""Reads of the research ledger behind the autonomy API and admin: run and candidate lookups, the
status of the research loop (`GET /trading/autonomy`), and the shapes the review pages show
(gate table, readiness, artifact links).

Nothing here writes; the lane and the promotion services are the only writers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.utils import timezone

from autonomy.engine.artifacts import OBJECT_PREFIX
from autonomy.models import (
    CandidateStage,
    DriftCheck,
    EvidenceContinuityReport,
    LifecycleRole,
    Promotion,
    ReplayCheck,
    ReplayCheckStatus,
    ResearchCandidate,
    ResearchRun,
    ResearchTrial,
    RunStatus,
    Sweep,
)
from autonomy.policy import GatePolicyError, load_gate_policy
from autonomy.research_lane import PAPER_PATCH
from autonomy.trials import HistoricTrial, TrialHistory
from torghut_site.flags import flag_enabled
from torghut_site.storage import ObjectStoreError, object_url

# run ids are 24 hex digits and candidate ids `cand-<12 hex>`; anything outside this alphabet
# cannot name a row, and must not reach Postgres (a NUL in a text parameter is a driver error)
_LEDGER_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _valid_id(value: str) -> bool:
    return _LEDGER_ID.fullmatch(value) is not None


# ------------------------------------------------------------------ lookups


def run_list(*, status: str | None = None, trigger: str | None = None) -> QuerySet[ResearchRun]:
    """Runs, newest first (`research_runs` is ordered by `-started_at`), with their candidate."""
    rows = ResearchRun.objects.prefetch_related(
        Prefetch("candidates", queryset=ResearchCandidate.objects.order_by("pk"))
    ).order_by("-started_at", "-pk")
    if status:
        rows = rows.filter(status=status)
    if trigger:
        rows = rows.filter(trigger=trigger)
    return rows


class _CandidateIds(Subquery):
    """The `candidate_id` column of a subquery as a JSON array, in the subquery's order (`[]`
    when it finds none): a run's candidates come back in the run's own row."""

    output_field = models.JSONField()

    def _as(self, template: str, compiler: Any, connection: Any) -> Any:
        clone = self.copy()
        clone.template = template
        return clone.as_sql(compiler, connection)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # ARRAY(subquery) keeps the subquery's ORDER BY; jsonb comes back parsed
        return self._as("TO_JSONB(ARRAY(%(subquery)s))", compiler, connection)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = "(SELECT JSON_GROUP_ARRAY(candidate_id) FROM (%(subquery)s) AS ids)"
        return self._as(template, compiler, connection)


# what a run's list row shows (RunSummarySerializer): the run's other JSON (artifacts, gate
# report, inputs) can be large and is left to the detail
RUN_ROW_FIELDS = (
    "run_id",
    "status",
    "trigger",
    "strategy_name",
    "strategy_type",
    "strategy_version",
    "promotion_target",
    "recommended_mode",
    "gate_policy_version",
    "gate_report_trace_id",
    "recommendation_trace_id",
    "recommendation",
    "progress_done",
    "progress_total",
    "progress_label",
    "error",
    "started_at",
    "finished_at",
)


def run_page(
    *, status: str | None, trigger: str | None, after_id: int | None, limit: int
) -> tuple[list[ResearchRun], int | None]:
    """A cursor page of runs, newest first by id (the order runs start in): the rows, each with
    `candidate_ids` (its candidates' ids in id order), and the id to continue after, None on the
    last page. One query, a row more than `limit` read."""
    candidate_ids = (
        ResearchCandidate.objects.filter(run=OuterRef("pk")).order_by("pk").values("candidate_id")
    )
    rows = ResearchRun.objects.only(*RUN_ROW_FIELDS).annotate(
        candidate_ids=_CandidateIds(candidate_ids)
    )
    if status:
        rows = rows.filter(status=status)
    if trigger:
        rows = rows.filter(trigger=trigger)
    if after_id:
        rows = rows.filter(pk__lt=after_id)
    found: list[ResearchRun] = list(rows.order_by("-pk")[: limit + 1])
    if len(found) > limit:
        return found[:limit], found[limit - 1].pk
    return found, None


def run_get(*, run_id: str) -> ResearchRun:
    """One run with its candidates, their folds, stress cases and promotions.
    Raises `ResearchRun.DoesNotExist`."""
    if not _valid_id(run_id):
        raise ResearchRun.DoesNotExist(run_id)
    return ResearchRun.objects.prefetch_related(
        Prefetch(
            "candidates",
            queryset=ResearchCandidate.objects.order_by("pk").prefetch_related(
                "fold_metrics", "stress_metrics", "promotions"
            ),
        )
    ).get(run_id=run_id)


def candidate_get(*, candidate_id: str) -> ResearchCandidate:
    """One candidate with its run, folds, stress cases and promotions.
    Raises `ResearchCandidate.DoesNotExist`."""
    if not _valid_id(candidate_id):
        raise ResearchCandidate.DoesNotExist(candidate_id)
    return (
        ResearchCandidate.objects.select_related("run")
        .prefetch_related("fold_metrics", "stress_metrics", "promotions")
        .get(candidate_id=candidate_id)
    )


def candidate_stage(*, candidate_id: str) -> CandidateStage | None:
    return CandidateStage.objects.filter(candidate_id=candidate_id).first()


def promotion_list(*, candidate: ResearchCandidate) -> QuerySet[Promotion]:
    return Promotion.objects.filter(candidate=candidate).order_by("-created_at", "-pk")


# ------------------------------------------------------------------ review shapes


def display_value(value: Any) -> str:
    """A JSON value as the review pages show it: JSON spelling, `—` for none."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


@dataclass(frozen=True)
class GateCheck:
    name: str
    value: Any
    threshold: Any
    passed: bool | None
    note: str

    @property
    def value_text(self) -> str:
        return display_value(self.value)

    @property
    def threshold_text(self) -> str:
        return display_value(self.threshold)


@dataclass(frozen=True)
class GateRow:
    gate: str
    name: str
    status: str
    reasons: list[str]
    checks: list[GateCheck]


def gate_rows(report: dict[str, Any]) -> list[GateRow]:
    """One row per gate of a gate report (`gates/gate-evaluation.json`), each check of its
    `details` with its value and threshold. A detail that is not a check (gate 7's `action`,
    `estimate`) is shown as a value without threshold."""
    rows: list[GateRow] = []
    for gate in report.get("gates") or []:
        if not isinstance(gate, dict):
            continue
        checks: list[GateCheck] = []
        details = gate.get("details") or {}
        for name, detail in sorted(details.items() if isinstance(details, dict) else []):
            if isinstance(detail, dict) and "value" in detail:
                passed = detail.get("passed")
                checks.append(
                    GateCheck(
                        name=str(name),
                        value=detail.get("value"),
                        threshold=detail.get("threshold"),
                        passed=passed if isinstance(passed, bool) else None,
                        note=str(detail.get("note") or ""),
                    )
                )
            else:
                checks.append(GateCheck(str(name), detail, None, None, ""))
        rows.append(
            GateRow(
                gate=str(gate.get("gate", "")),
                name=str(gate.get("name", "")),
                status=str(gate.get("status", "")),
                reasons=[str(r) for r in gate.get("reasons") or []],
                checks=checks,
            )
        )
    return rows


def readiness_rows(readiness: dict[str, Any]) -> list[tuple[str, str]]:
    """The readiness dry runs as (check, result) pairs (their errors are under `errors`)."""
    return sorted((str(k), display_value(v)) for k, v in readiness.items() if k != "errors")


@dataclass(frozen=True)
class ArtifactLink:
    path: str
    sha256: str
    size: int | None
    uri: str
    url: str | None
    error: str


def artifact_key(run_id: str, path: str) -> str:
    """The object-storage key the lane stored an artifact under."""
    return f"{OBJECT_PREFIX}/{run_id}/{path}"


def artifact_links(run: ResearchRun) -> list[ArtifactLink]:
    """The run's artifacts with a link to each (a presigned URL on S3, a `file://` URL on the
    filesystem backend). A storage failure leaves that artifact without a link, with the reason;
    it never fails the page."""
    links: list[ArtifactLink] = []
    manifest = run.artifacts if isinstance(run.artifacts, dict) else {}
    for path, entry in sorted(manifest.items()):
        info = entry if isinstance(entry, dict) else {}
        url: str | None = None
        error = str(info.get("storage_error") or "")
        if not error:
            try:
                url = object_url(artifact_key(run.run_id, str(path)))
            except ObjectStoreError as exc:
                error = exc.reason
        size = info.get("size")
        links.append(
            ArtifactLink(
                path=str(path),
                sha256=str(info.get("sha256") or ""),
                size=size if isinstance(size, int) else None,
                uri=str(info.get("uri") or ""),
                url=url,
                error=error,
            )
        )
    return links


def artifact_rows(run: ResearchRun) -> list[dict[str, Any]]:
    """The artifact manifest as API rows (no links: a presigned URL is the admin's to hand out)."""
    manifest = run.artifacts if isinstance(run.artifacts, dict) else {}
    rows = []
    for path, entry in sorted(manifest.items()):
        info = entry if isinstance(entry, dict) else {}
        size = info.get("size")
        rows.append(
            {
                "path": str(path),
                "sha256": str(info.get("sha256") or ""),
                "size": size if isinstance(size, int) else None,
                "uri": str(info.get("uri") or ""),
                "storage_error": str(info.get("storage_error") or ""),
            }
        )
    return rows


# ------------------------------------------------------------------ status


def _gate_policy() -> dict[str, Any]:
    path = str(settings.TRADING_AUTONOMY_GATE_POLICY_PATH)
    try:
        policy, _ = load_gate_policy(path)
    except GatePolicyError as exc:
        return {"path": path, "version": None, "error": str(exc)}
    return {"path": path, "version": policy.policy_version, "error": None}


def run_summary(run: ResearchRun) -> dict[str, Any]:
    """What the status endpoint says about one run."""
    candidates = list(run.candidates.all())
    patch = run.artifacts.get(PAPER_PATCH) if isinstance(run.artifacts, dict) else None
    recommendation = run.recommendation or {}
    return {
        "run_id": run.run_id,
        "status": run.status,
        "trigger": run.trigger,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "candidate_id": candidates[0].candidate_id if candidates else None,
        "promotion_target": run.promotion_target,
        "recommended_mode": run.recommended_mode or None,
        "recommendation": {
            "action": recommendation.get("action"),
            "eligible": bool(recommendation.get("eligible", False)),
            "reasons": [str(r) for r in recommendation.get("reasons") or []],
        },
        "gates_allowed": run.gate_report.get("allowed") if run.gate_report else None,
        "gates": [
            {"gate": g.gate, "name": g.name, "status": g.status, "reasons": g.reasons}
            for g in gate_rows(run.gate_report or {})
        ],
        "patch_path": (patch or {}).get("path") or None,
        "patch_uri": (patch or {}).get("uri") or None,
        "progress": {
            "done": run.progress_done,
            "total": run.progress_total,
            "label": run.progress_label,
        },
        "error": run.error,
    }


def _last_drift() -> dict[str, Any] | None:
    check = DriftCheck.objects.select_related("run").order_by("-checked_at", "-pk").first()
    if check is None:
        return None
    return {
        "run_id": check.run.run_id,
        "strategy_name": check.strategy_name,
        "checked_at": check.checked_at,
        "reason_codes": [str(c) for c in check.reason_codes or []],
        "action": check.action,
        "action_status": check.action_status,
        "rollback_triggered": check.rollback_triggered,
        "rollback_candidate_id": check.rollback_candidate_id,
    }


def last_continuity_report() -> EvidenceContinuityReport | None:
    return EvidenceContinuityReport.objects.order_by("-checked_at", "-pk").first()


def _last_continuity() -> dict[str, Any] | None:
    report = last_continuity_report()
    if report is None:
        return None
    return {
        "checked_at": report.checked_at,
        "passed": report.passed,
        "runs_checked": report.runs_checked,
        "failed_runs": report.failed_runs,
    }


def autonomy_status_brief() -> dict[str, Any]:
    """The `autonomy` block of `/trading/status` (one query): whether the loop is on and its
    last run's outcome; `GET /trading/autonomy` has the rest."""
    last = (
        ResearchRun.objects.order_by("-started_at", "-pk")
        .only(
            "run_id",
            "status",
            "trigger",
            "started_at",
            "finished_at",
            "recommended_mode",
            "gate_report",
            "error",
        )
        .first()
    )
    return {
        "enabled": flag_enabled("TRADING_AUTONOMY_ENABLED"),
        "interval_seconds": settings.TRADING_AUTONOMY_INTERVAL_SECONDS,
        "last_run": None
        if last is None
        else {
            "run_id": last.run_id,
            "status": last.status,
            "trigger": last.trigger,
            "started_at": last.started_at,
            "finished_at": last.finished_at,
            "recommended_mode": last.recommended_mode or None,
            "gates_allowed": last.gate_report.get("allowed") if last.gate_report else None,
            "error": last.error,
        },
    }


def evidence_continuity_brief() -> dict[str, Any] | None:
    """The `evidence_continuity` block of `/trading/status`: the last audit (one query)."""
    return _last_continuity()


def autonomy_status() -> dict[str, Any]:
    """`GET /trading/autonomy`: the research loop's configuration (flags read fresh; never the
    approval token itself), its last run, the current champions, and the last drift check and
    evidence-continuity audit."""
    last = run_list().first()
    champions = ResearchCandidate.objects.filter(
        lifecycle_role=LifecycleRole.CHAMPION
    ).select_related("run")
    return {
        "enabled": flag_enabled("TRADING_AUTONOMY_ENABLED"),
        "interval_seconds": settings.TRADING_AUTONOMY_INTERVAL_SECONDS,
        "signal_lookback_minutes": settings.TRADING_AUTONOMY_SIGNAL_LOOKBACK_MINUTES,
        "gate_policy": _gate_policy(),
        "strategy_config_path": str(settings.TRADING_AUTONOMY_STRATEGY_CONFIG_PATH),
        "allow_live_promotion": flag_enabled("TRADING_AUTONOMY_ALLOW_LIVE_PROMOTION"),
        "approval_token_configured": bool(settings.TRADING_AUTONOMY_APPROVAL_TOKEN),
        "artifact_dir": str(settings.TRADING_ARTIFACT_DIR),
        "last_run": run_summary(last) if last is not None else None,
        "champions": [
            {
                "candidate_id": c.candidate_id,
                "strategy_name": c.strategy_name,
                "promotion_target": c.promotion_target,
                "run_id": c.run.run_id,
            }
            for c in champions
        ],
        "last_drift_check": _last_drift(),
        "evidence_continuity": _last_continuity(),
    }


def scheduled_failure_streak(*, limit: int) -> list[str]:
    """The run ids of the latest finished scheduled runs that failed in a row, newest first (at
    most `limit`).

    A run counts as failed when the lane itself broke: status `failed` with the error it raised
    recorded. A run whose candidate failed its gates is also stored as `failed` but with no
    error: the loop worked and said no, which ends the streak like a passed or skipped run.
    """
    rows = (
        ResearchRun.objects.filter(trigger="schedule", finished_at__isnull=False)
        .order_by("-finished_at", "-pk")
        .values_list("run_id", "status", "error")[:limit]
    )
    streak = []
    for run_id, status, error in rows:
        if status != RunStatus.FAILED or not error:
            break
        streak.append(run_id)
    return streak


def drift_evidence_for_live(strategy_name: str, *, now: datetime | None = None) -> str:
    """'' when a live promotion may proceed, else the refusal code."""
    if not flag_enabled("TRADING_DRIFT_LIVE_PROMOTION_REQUIRES_EVIDENCE"):
        return ""
    now = now or timezone.now()
    max_age = timedelta(seconds=settings.TRADING_DRIFT_LIVE_PROMOTION_MAX_EVIDENCE_AGE_SECONDS)
    latest = DriftCheck.objects.filter(strategy_name=strategy_name).order_by("-checked_at").first()
    if latest is None or latest.checked_at < now - max_age:
        return "drift_evidence_missing"
    if latest.reason_codes:
        return "drift_detected"
    return ""


def trial_history(*, family: str, window_key: str | None = None) -> TrialHistory:
    """A family's recorded trials (`autonomy.models.ResearchTrial`) with their per-block sums;
    given `window_key`, the sums only of the trials on that window (CSCV reads no other)."""
    rows = ResearchTrial.objects.filter(family=family).order_by("trial_key")
    if window_key is None:
        fields = rows.values_list("trial_key", "sharpe_ratio", "window_key", "block_sums")
        return TrialHistory(
            family=family,
            trials=tuple(HistoricTrial(k, sh, w, _as_sums(b)) for k, sh, w, b in fields),
        )
    sums = dict(rows.filter(window_key=window_key).values_list("trial_key", "block_sums"))
    return TrialHistory(
        family=family,
        trials=tuple(
            HistoricTrial(k, sh, w, _as_sums(sums.get(k)))
            for k, sh, w in rows.values_list("trial_key", "sharpe_ratio", "window_key")
        ),
    )


def _as_sums(raw: object) -> tuple[tuple[float, ...], ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(tuple(float(x) for x in row) for row in raw if isinstance(row, list))


def clean_replay_sessions(strategy_name: str, *, before: date) -> int:
    """How many of the strategy's most recent checked sessions (session dates < `before`), in a
    row, passed the nightly live-versus-replay check: every lane's `ReplayCheck` of the date is
    `clean` (no rule divergence). A date with a `mismatched` or `no_signals` row ends the run; a
    date without any check row is not a session (no recorded signals and no decision)."""
    rows = (
        ReplayCheck.objects.filter(strategy__name=strategy_name, session_date__lt=before)
        .order_by("-session_date")
        .values_list("session_date", "status")
    )
    clean = 0
    current: date | None = None
    current_clean = True
    for session_date, status in rows.iterator():
        if session_date != current:
            if current is not None:
                if not current_clean:
                    return clean
                clean += 1
            current, current_clean = session_date, True
        current_clean = current_clean and status == ReplayCheckStatus.CLEAN
    if current is not None and current_clean:
        clean += 1
    return clean


def sweep_get(*, sweep_id: str) -> Sweep | None:
    """A sweep by its id, or by a unique prefix of at least 8 characters."""
    if not re.fullmatch(r"[0-9a-f]{8,64}", sweep_id):
        return None
    if len(sweep_id) == 64:
        return Sweep.objects.filter(sweep_id=sweep_id).first()
    if len(sweep_id) < 8:
        return None
    found = list(Sweep.objects.filter(sweep_id__startswith=sweep_id)[:2])
    return found[0] if len(found) == 1 else None
