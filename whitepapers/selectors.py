"""Reads of the whitepaper workflow: status, one run with everything it produced."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from torghut_site.models import DeadLetterMessage, HeartbeatKind
from torghut_site.selectors import heartbeat_list
from whitepapers.models import (
    EventStatus,
    GithubIssueEvent,
    WhitepaperAnalysisRun,
    WhitepaperCodexAgentRun,
    WhitepaperDesignPullRequest,
    WhitepaperDocumentVersion,
)
from whitepapers.storage import storage_describe


def whitepaper_health() -> dict[str, Any]:
    """`GET /whitepapers/status` for anyone (a probe): nothing about storage, runs or queues."""
    return {"ok": True, "workflow_enabled": settings.WHITEPAPER_WORKFLOW_ENABLED}


def whitepaper_status(*, window: timedelta = timedelta(hours=24)) -> dict[str, Any]:
    """`GET /whitepapers/status` for a user who may see runs: the original service's fields
    (docs/compatibility.md#endpoints), then what an operator needs besides."""
    consumers = heartbeat_list(kind=HeartbeatKind.WHITEPAPER_CONSUMER)
    since = timezone.now() - window
    runs_by_status = dict(
        WhitepaperAnalysisRun.objects.values_list("status").annotate(n=Count("pk")).order_by()
    )
    return {
        "ok": True,
        "workflow_enabled": settings.WHITEPAPER_WORKFLOW_ENABLED,
        "kafka_enabled": settings.WHITEPAPER_KAFKA_ENABLED,
        "inngest_enabled": False,
        "inngest_registered": False,
        "worker_running": any(c.healthy for c in consumers),
        "requeue_comment_keyword": settings.WHITEPAPER_REQUEUE_COMMENT_KEYWORD,
        "control_auth_enabled": bool(settings.WHITEPAPER_WORKFLOW_API_TOKEN),
        "webhook_enabled": bool(settings.WHITEPAPER_GITHUB_WEBHOOK_SECRET),
        "agentrun_auto_dispatch": settings.WHITEPAPER_AGENTRUN_AUTO_DISPATCH,
        "kafka_topic": settings.WHITEPAPER_KAFKA_TOPIC,
        "storage": storage_describe(),
        "runs_by_status": runs_by_status,
        "events_pending": GithubIssueEvent.objects.filter(status=EventStatus.PENDING).count(),
        "dead_letters_window": DeadLetterMessage.objects.filter(
            consumer="whitepaper", created_at__gte=since
        ).count(),
        "consumers": [
            {
                "name": c.name,
                "healthy": c.healthy,
                "state": c.state,
                "age_seconds": round(c.age_seconds, 1),
            }
            for c in consumers
        ],
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _version_json(version: WhitepaperDocumentVersion | None) -> dict[str, Any] | None:
    if version is None:
        return None
    return {
        "version_number": version.version_number,
        "parse_status": version.parse_status,
        "parse_error": version.parse_error,
        "file_name": version.file_name,
        "file_size_bytes": version.file_size_bytes,
        "checksum_sha256": version.checksum_sha256,
        "ceph_bucket": version.ceph_bucket,
        "ceph_object_key": version.ceph_object_key,
        "ceph_etag": version.ceph_etag,
        "page_count": version.page_count,
        "char_count": version.char_count,
    }


def _agentrun_json(agentrun: WhitepaperCodexAgentRun | None) -> dict[str, Any] | None:
    if agentrun is None:
        return None
    return {
        "attempt": agentrun.attempt,
        "agentrun_name": agentrun.agentrun_name,
        "namespace": agentrun.namespace,
        "uid": agentrun.uid,
        "status": agentrun.status,
        "idempotency_key": agentrun.idempotency_key,
        "head_branch": agentrun.vcs_head_branch,
        "prompt_hash": agentrun.prompt_hash,
        "started_at": _iso(agentrun.started_at),
        "completed_at": _iso(agentrun.completed_at),
    }


def _pr_json(pr: WhitepaperDesignPullRequest) -> dict[str, Any]:
    return {
        "attempt": pr.attempt,
        "status": pr.status,
        "repository": pr.repository,
        "base_branch": pr.base_branch,
        "head_branch": pr.head_branch,
        "pr_number": pr.pr_number,
        "pr_url": pr.pr_url,
        "title": pr.title,
        "ci_status": pr.ci_status,
        "is_merged": pr.is_merged,
    }


def run_detail(*, run_id: str) -> dict[str, Any]:
    """`GET /whitepapers/runs/{run_id}`. Raises `WhitepaperAnalysisRun.DoesNotExist`."""
    run = WhitepaperAnalysisRun.objects.select_related("document", "document_version").get(
        run_id=run_id
    )
    latest = run.agentruns.order_by("-attempt").first()
    synthesis = getattr(run, "synthesis", None)
    verdict = getattr(run, "verdict", None)
    document = run.document
    return {
        "run_id": run.run_id,
        "status": run.status,
        "trigger_source": run.trigger_source,
        "trigger_actor": run.trigger_actor,
        "dispatch_attempt": run.dispatch_attempt,
        "failure_code": run.failure_code,
        "failure_reason": run.failure_reason,
        "orchestration_context": run.orchestration_context,
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "completed_at": _iso(run.completed_at),
        "document": {
            "document_key": document.document_key,
            "source": document.source,
            "source_identifier": document.source_identifier,
            "title": document.title,
            "status": document.status,
        },
        "document_version": _version_json(run.document_version),
        "agentrun": _agentrun_json(latest),
        "steps": [
            {
                "step_name": s.step_name,
                "step_order": s.step_order,
                "attempt": s.attempt,
                "status": s.status,
                "duration_ms": s.duration_ms,
            }
            for s in run.steps.order_by("step_order", "attempt", "pk")
        ],
        "synthesis": (
            {
                "executive_summary": synthesis.executive_summary,
                "key_findings": synthesis.key_findings,
                "implementation_plan_md": synthesis.implementation_plan_md,
                "confidence": str(synthesis.confidence)
                if synthesis.confidence is not None
                else None,
            }
            if synthesis
            else None
        ),
        "verdict": (
            {
                "verdict": verdict.verdict,
                "score": str(verdict.score) if verdict.score is not None else None,
                "confidence": str(verdict.confidence) if verdict.confidence is not None else None,
                "requires_followup": verdict.requires_followup,
                "approved_by": verdict.approved_by,
            }
            if verdict
            else None
        ),
        "design_pull_requests": [
            _pr_json(pr) for pr in run.design_pull_requests.order_by("attempt")
        ],
    }
