"""Finalize (docs/compatibility.md#finalize): the agent reports its synthesis, verdict, design pull
request(s), artifacts and steps. Everything is an upsert keyed by the run — synthesis and verdict
1:1 with the run, pull requests by (run, attempt), artifacts by (run, bucket, key), steps by (run,
name, attempt) — so finalizing twice with the same payload changes nothing the second time, and one
run's report never changes another run's rows (a run naming an object another run reported gets its
own row).

A verdict's approval is a human act: `approved_by` in the payload is never stored as sent. Only
an operator's finalize (`approver`, the signed-in user's name) records an approval, under that
name; the agent's finalize leaves an existing approval as it is.

`candidate_ids` names the research candidates the run inspired: each becomes a
`WhitepaperRunCandidateLink` (source `finalize`, by `reporter`), once per candidate
(`whitepapers.services.links`); a repeated finalize adds only candidates not linked yet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from trading.notifications import notify
from whitepapers.metrics import WHITEPAPER_FINALIZED
from whitepapers.models import (
    CandidateLinkSource,
    DocumentStatus,
    RunStatus,
    WhitepaperAnalysisRun,
    WhitepaperAnalysisStep,
    WhitepaperArtifact,
    WhitepaperDesignPullRequest,
    WhitepaperSynthesis,
    WhitepaperViabilityVerdict,
)
from whitepapers.services.links import candidate_links_write
from whitepapers.services.runs import document_move, run_move

FINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})
_AGENTRUN_PHASE = {
    RunStatus.COMPLETED: "succeeded",
    RunStatus.FAILED: "failed",
    RunStatus.CANCELLED: "cancelled",
    RunStatus.RUNNING: "running",
}


@dataclass(frozen=True)
class FinalizeOutcome:
    run_id: str
    status: str
    completed_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
        }


def implementation_plan(synthesis: dict[str, Any]) -> str:
    """`implementation_plan_md`, or `implementation_implications` turned into bullets."""
    plan = synthesis.get("implementation_plan_md")
    if plan:
        return str(plan)
    implications = synthesis.get("implementation_implications")
    if isinstance(implications, list):
        return "\n".join(f"- {item}" for item in implications if str(item).strip())
    return str(implications or "")


_SYNTHESIS_FIELDS = (
    "synthesis_version",
    "generated_by",
    "model_name",
    "prompt_version",
    "executive_summary",
    "problem_statement",
    "methodology_summary",
    "key_findings",
    "novelty_claims",
    "risk_assessment",
    "citations",
    "confidence",
)
_VERDICT_FIELDS = (
    "verdict",
    "score",
    "confidence",
    "decision_policy",
    "rationale",
    "rejection_reasons",
    "recommendations",
    "requires_followup",
)
_PR_FIELDS = (
    "status",
    "repository",
    "base_branch",
    "head_branch",
    "pr_number",
    "pr_url",
    "title",
    "body",
    "commit_sha",
    "merge_commit_sha",
    "checks_url",
    "ci_status",
    "is_merged",
    "merged_at",
    "metadata",
)
_ARTIFACT_FIELDS = (
    "artifact_scope",
    "artifact_type",
    "artifact_role",
    "artifact_uri",
    "checksum_sha256",
    "size_bytes",
    "content_type",
    "metadata",
)
_STEP_FIELDS = (
    "step_order",
    "status",
    "executor",
    "idempotency_key",
    "trace_id",
    "duration_ms",
    "input_json",
    "output_json",
    "error_json",
)


def _pick(data: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: data[name] for name in fields if name in data and data[name] is not None}


def run_finalize(
    *,
    run_id: str,
    data: dict[str, Any],
    raw_payload: dict[str, Any] | None = None,
    approver: str = "",
    reporter: str = "finalize",
) -> FinalizeOutcome:
    """Apply a validated finalize payload. `approver`: the signed-in operator finalizing, whose
    name an `approved_by` in the verdict records (empty for the agent: no approval). `reporter`:
    who sent it (the AgentRun or the operator), named by the candidate links it writes. Raises
    `WhitepaperAnalysisRun.DoesNotExist` or `IllegalRunTransition` (e.g. failing a run that
    already completed)."""
    status = data.get("status") or RunStatus.COMPLETED
    with transaction.atomic():
        run = (
            WhitepaperAnalysisRun.objects.select_for_update()
            .select_related("document")
            .get(run_id=run_id)
        )
        raw = raw_payload or {}
        synthesis = _upsert_synthesis(run, data.get("synthesis"), raw.get("synthesis"))
        verdict = _upsert_verdict(run, data.get("verdict"), approver=approver)
        prs = _upsert_pull_requests(run, data.get("design_pull_request"))
        links = {
            "document": run.document,
            "document_version": run.document_version,
            "synthesis": synthesis,
            "verdict": verdict,
            "design_pull_request": prs[-1] if prs else None,
        }
        _upsert_artifacts(run, data.get("artifacts") or [], links)
        if data.get("candidate_ids"):
            candidate_links_write(
                run=run,
                candidate_ids=data["candidate_ids"],
                source=CandidateLinkSource.FINALIZE,
                linked_by=reporter,
            )
        for step in data.get("steps") or []:
            WhitepaperAnalysisStep.objects.update_or_create(
                run=run,
                step_name=step["step_name"],
                attempt=step.get("attempt") or 1,
                defaults=_pick(step, _STEP_FIELDS),
            )
        now = timezone.now()
        fields: dict[str, Any] = {"result_payload": raw_payload if raw_payload is not None else {}}
        if status in FINAL:
            fields["completed_at"] = run.completed_at or now
        if status == RunStatus.FAILED:
            fields["failure_code"] = run.failure_code or "agent_reported_failure"
            fields["failure_reason"] = data.get("failure_reason") or run.failure_reason
        run_move(run, status, **fields)
        latest = run.agentruns.order_by("-attempt").first()
        if latest is not None:
            latest.status = _AGENTRUN_PHASE[status]
            if status in FINAL:
                latest.completed_at = latest.completed_at or now
            latest.save(update_fields=["status", "completed_at", "updated_at"])
        if status == RunStatus.COMPLETED:
            document_move(run.document, DocumentStatus.ANALYZED)
        elif status in FINAL:
            document_move(run.document, DocumentStatus.FAILED)
    WHITEPAPER_FINALIZED.labels(status=status).inc()
    return FinalizeOutcome(run_id=run.run_id, status=run.status, completed_at=run.completed_at)


def _upsert_artifacts(
    run: WhitepaperAnalysisRun, artifacts: list[dict[str, Any]], links: dict[str, Any]
) -> None:
    for artifact in artifacts:
        WhitepaperArtifact.objects.update_or_create(
            run=run,
            ceph_bucket=artifact["ceph_bucket"],
            ceph_object_key=artifact["ceph_object_key"],
            defaults={**_pick(artifact, _ARTIFACT_FIELDS), **links},
        )


def _upsert_synthesis(
    run: WhitepaperAnalysisRun, data: dict[str, Any] | None, raw: Any
) -> WhitepaperSynthesis | None:
    if not data:
        return WhitepaperSynthesis.objects.filter(run=run).first()
    defaults = _pick(data, _SYNTHESIS_FIELDS)
    defaults["implementation_plan_md"] = implementation_plan(data)
    defaults["synthesis_json"] = raw if isinstance(raw, dict) else {}
    synthesis, _ = WhitepaperSynthesis.objects.update_or_create(run=run, defaults=defaults)
    return synthesis


def _upsert_verdict(
    run: WhitepaperAnalysisRun, data: dict[str, Any] | None, *, approver: str
) -> WhitepaperViabilityVerdict | None:
    if not data:
        return WhitepaperViabilityVerdict.objects.filter(run=run).first()
    defaults = _pick(data, _VERDICT_FIELDS)
    defaults.setdefault("verdict", "needs_review")
    gating = dict(data.get("gating") or {})
    if data.get("dspy_eval_report") is not None:
        gating["dspy_eval_report"] = data["dspy_eval_report"]
    defaults["gating_json"] = gating
    existing = WhitepaperViabilityVerdict.objects.filter(run=run).first()
    if approver and data.get("approved_by"):
        defaults["approved_by"] = approver
        defaults["approved_at"] = (
            existing.approved_at if existing and existing.approved_at else timezone.now()
        )
    elif existing is not None and existing.approved_by and _verdict_changed(existing, defaults):
        # an approval is of the verdict a person read: a changed verdict is no longer approved
        defaults["approved_by"] = ""
        defaults["approved_at"] = None
    verdict, _ = WhitepaperViabilityVerdict.objects.update_or_create(run=run, defaults=defaults)
    _verdict_notify(run, verdict)
    return verdict


def _verdict_notify(run: WhitepaperAnalysisRun, verdict: WhitepaperViabilityVerdict) -> None:
    """One post per run and verdict value (a finalize repeated with the same verdict is one)."""
    payload = {
        "run_id": run.run_id,
        "title": run.document.title,
        "verdict": verdict.verdict,
        "score": verdict.score,
        "confidence": verdict.confidence,
        "approved_by": verdict.approved_by,
    }
    notify("whitepaper_verdict", f"whitepaper_verdict:{run.run_id}:{verdict.verdict}", payload)


def _verdict_changed(existing: WhitepaperViabilityVerdict, defaults: dict[str, Any]) -> bool:
    return any(
        getattr(existing, name) != value
        for name, value in defaults.items()
        if name in _VERDICT_FIELDS or name == "gating_json"
    )


def _upsert_pull_requests(
    run: WhitepaperAnalysisRun, data: dict[str, Any] | list[dict[str, Any]] | None
) -> list[WhitepaperDesignPullRequest]:
    if not data:
        return []
    items = data if isinstance(data, list) else [data]
    agentruns = {a.attempt: a for a in run.agentruns.all()}
    default_attempt = max(agentruns) if agentruns else run.dispatch_attempt
    prs: list[WhitepaperDesignPullRequest] = []
    for item in items:
        attempt = item.get("attempt") or default_attempt
        defaults = _pick(item, _PR_FIELDS)
        defaults["codex_agentrun"] = agentruns.get(attempt)
        if defaults.get("is_merged") and not defaults.get("merged_at"):
            existing = WhitepaperDesignPullRequest.objects.filter(run=run, attempt=attempt).first()
            defaults["merged_at"] = (
                existing.merged_at if existing and existing.merged_at else timezone.now()
            )
        pr, _ = WhitepaperDesignPullRequest.objects.update_or_create(
            run=run, attempt=attempt, defaults=defaults
        )
        prs.append(pr)
    return prs
