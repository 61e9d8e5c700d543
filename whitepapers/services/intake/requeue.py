"""Another analysis attempt of a run: a keyword comment on its issue, or an operator in the
admin; a run whose PDF never got stored first downloads it again."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from whitepapers.extract import pdf_text_extract
from whitepapers.github import IssueEvent
from whitepapers.models import (
    DocumentStatus,
    GithubIssueEvent,
    ParseStatus,
    RunStatus,
    StepStatus,
    WhitepaperAnalysisRun,
    WhitepaperAnalysisStep,
    WhitepaperDocument,
)
from whitepapers.pdf import PdfFetchError
from whitepapers.services.intake.download import attachment_download
from whitepapers.services.intake.outcomes import IntakeOutcome, run_outcome
from whitepapers.services.intake.records import (
    Origin,
    content_store,
    dispatch_after_commit,
    stored_fields,
    trigger_source,
    version_new,
)
from whitepapers.services.runs import document_move, run_move
from whitepapers.statemachine import RETRYABLE_AGENTRUN_STATUSES
from whitepapers.storage import ObjectStoreError, object_put, pdf_object_key

REQUEUE_STEP = "requeue_request"


def requeue_from_comment(
    run: WhitepaperAnalysisRun, *, issue: IssueEvent, event: GithubIssueEvent
) -> IntakeOutcome:
    return run_requeue(
        run,
        origin=Origin.of(issue, event),
        trigger_source=trigger_source(event, comment=True),
        note=(issue.comment_body or "")[:2000],
    )


def run_requeue(
    run: WhitepaperAnalysisRun, *, origin: Origin, trigger_source: str, note: str = ""
) -> IntakeOutcome:
    """Queue another analysis attempt of a run (a keyword comment, or an operator in the admin).

    `already_completed` for a completed run; a run whose PDF never got stored first retries the
    download (`requeue_not_ready` when that fails again); `already_dispatched` while the latest
    AgentRun is alive (or this attempt was already requested); else `requeued` with the next
    attempt, dispatched after the commit.
    """
    if run.status == RunStatus.COMPLETED:
        return run_outcome(run, "already_completed")
    version = run.document_version
    if version is None or version.parse_status != ParseStatus.STORED:
        not_ready = _refetch(run, origin=origin)
        if not_ready is not None:
            return not_ready
    latest = run.agentruns.order_by("-attempt").first()
    if latest is not None and latest.status not in RETRYABLE_AGENTRUN_STATUSES:
        return run_outcome(run, "already_dispatched")
    attempt = max(run.dispatch_attempt, (latest.attempt + 1) if latest else 1)
    now = timezone.now()
    with transaction.atomic():
        locked = (
            WhitepaperAnalysisRun.objects.select_for_update()
            .select_related("document")
            .get(pk=run.pk)
        )
        _, created = WhitepaperAnalysisStep.objects.get_or_create(
            run=locked,
            step_name=REQUEUE_STEP,
            attempt=attempt,
            defaults={
                "step_order": 3,
                "status": StepStatus.COMPLETED,
                "executor": "torghut",
                "idempotency_key": origin.delivery_id,
                "started_at": now,
                "completed_at": now,
                "input_json": {"note": note, "actor": origin.actor, "source": origin.source},
            },
        )
        if not created:
            return run_outcome(locked, "already_dispatched")
        run_move(
            locked,
            RunStatus.QUEUED,
            dispatch_attempt=attempt,
            trigger_source=trigger_source,
            trigger_actor=origin.actor,
            failure_code="",
            failure_reason="",
        )
        document_move(locked.document, DocumentStatus.QUEUED)
        # a requeue asks for a dispatch whatever WHITEPAPER_AGENTRUN_AUTO_DISPATCH says
        dispatch_after_commit(locked.run_id, force=True)
    return run_outcome(locked, "requeued")


def admin_requeue(run: WhitepaperAnalysisRun, *, actor: str) -> IntakeOutcome:
    origin = Origin(run.issue_number, actor, "admin", f"admin-{timezone.now().isoformat()}")
    return run_requeue(run, origin=origin, trigger_source="admin_requeue", note="admin action")


def _refetch(run: WhitepaperAnalysisRun, *, origin: Origin) -> IntakeOutcome | None:
    """Download a run's PDF again (it never got stored). None once it is stored."""
    url = str(run.orchestration_context.get("attachment_url", ""))
    try:
        pdf = attachment_download(url)
        stored = object_put(pdf_object_key(pdf.sha256), pdf.data, content_type="application/pdf")
    except PdfFetchError as exc:
        detail = f"{exc.reason}: {exc.detail}"
    except ObjectStoreError as exc:
        detail = f"{exc.reason}: {exc.detail}"
    else:
        text = pdf_text_extract(pdf.data)  # before the transaction: no lock held while parsing
        with transaction.atomic():
            locked = WhitepaperAnalysisRun.objects.select_for_update().get(pk=run.pk)
            current = locked.document_version
            if current is None or current.parse_status != ParseStatus.STORED:
                document = WhitepaperDocument.objects.select_for_update().get(pk=run.document_id)
                version = version_new(
                    document,
                    origin,
                    url=url,
                    trigger="requeue_refetch",
                    **stored_fields(pdf, stored),
                )
                content_store(version, text)
                locked.document_version = version
                locked.save(update_fields=["document_version", "updated_at"])
        run.refresh_from_db()
        return None
    return IntakeOutcome(
        accepted=False,
        reason="requeue_not_ready",
        run_id=run.run_id,
        document_key=run.document.document_key,
        detail=detail,
    )
