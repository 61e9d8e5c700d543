"""The intake's writes: document, version, content, run and the `issue_intake` step in one short
transaction (or the failed run whose version says why), with the AgentRun dispatch queued after
the commit."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from torghut_site.queueing import task_after_commit
from whitepapers.extract import PdfText
from whitepapers.github import IssueEvent, Marker, head_branch_for, run_id_for
from whitepapers.models import (
    DocumentSource,
    DocumentStatus,
    GithubIssueEvent,
    ParseStatus,
    RunStatus,
    StepStatus,
    WhitepaperAnalysisRun,
    WhitepaperAnalysisStep,
    WhitepaperContent,
    WhitepaperDocument,
    WhitepaperDocumentVersion,
)
from whitepapers.pdf import DownloadedPdf
from whitepapers.services.intake.authorization import issue_authorization, marker_branches
from whitepapers.services.intake.outcomes import IntakeOutcome, run_outcome
from whitepapers.services.runs import document_move
from whitepapers.storage import StoredObject

INTAKE_STEP = "issue_intake"


def dispatch_after_commit(run_id: str, *, force: bool = False) -> None:
    if not (force or settings.WHITEPAPER_AGENTRUN_AUTO_DISPATCH):
        return
    task_after_commit("whitepapers.tasks.dispatch_agentrun", run_id)


def trigger_source(event: GithubIssueEvent, *, comment: bool) -> str:
    kind = "github_issue_comment" if comment else "github_issue"
    return f"{kind}_{event.source}"


def run_context(issue: IssueEvent, marker: Marker, url: str) -> dict[str, Any]:
    """The run's orchestration context. The base branch is the validated one
    (`event_rules_apply` refused the event otherwise), the head the run's own; the marker's text
    stays under `marker`, as data."""
    branches = marker_branches(marker)
    run_id = run_id_for(issue.repository, issue.issue_number, url)
    return {
        "repository": issue.repository,
        "issue_number": issue.issue_number,
        "issue_url": issue.issue_url,
        "issue_title": issue.issue_title,
        "marker": marker.fields,
        "attachment_url": url,
        "base_branch": branches.base,
        "head_branch": head_branch_for(run_id, 1),  # attempt n: head_branch_for(run_id, n)
        "authorized_by": issue_authorization(issue),
    }


def document_for(issue: IssueEvent) -> WhitepaperDocument:
    """The issue's document, locked (its versions are numbered under the lock)."""
    identifier = f"{issue.repository}#{issue.issue_number}"
    document, _ = WhitepaperDocument.objects.select_for_update().get_or_create(
        source=DocumentSource.GITHUB_ISSUE,
        source_identifier=identifier,
        defaults={
            "document_key": f"wp-{uuid.uuid4().hex}",
            "title": issue.issue_title[:2000],
            "ingested_by": issue.actor or "",
            "metadata": {
                "repository": issue.repository,
                "issue_number": issue.issue_number,
                "issue_url": issue.issue_url,
            },
        },
    )
    return document


@dataclass(frozen=True)
class Origin:
    """Who and what a new document version came from."""

    issue_number: int | None
    actor: str
    source: str
    delivery_id: str

    @classmethod
    def of(cls, issue: IssueEvent, event: GithubIssueEvent) -> Origin:
        return cls(issue.issue_number, issue.actor or "", event.source, event.delivery_id)


def version_new(
    document: WhitepaperDocument, origin: Origin, *, url: str, trigger: str, **fields: Any
) -> WhitepaperDocumentVersion:
    """Version n+1 of a document locked by the caller."""
    last = document.versions.order_by("-version_number").values_list("version_number", flat=True)
    return WhitepaperDocumentVersion.objects.create(
        document=document,
        version_number=(last.first() or 0) + 1,
        trigger_reason=trigger,
        file_name=f"issue-{origin.issue_number}.pdf" if origin.issue_number else "source.pdf",
        mime_type="application/pdf",
        uploaded_by=origin.actor,
        upload_metadata={
            "attachment_url": url,
            "source": origin.source,
            "delivery_id": origin.delivery_id,
            **fields.pop("upload_metadata", {}),
        },
        **fields,
    )


def content_store(version: WhitepaperDocumentVersion, text: PdfText) -> None:
    """The extracted text (already extracted: no parsing inside the caller's transaction). A
    limit that stopped the extraction leaves the version stored, its text empty (or cut at
    WHITEPAPER_EXTRACT_MAX_CHARS) and the limit named in the warnings and the metadata."""
    WhitepaperContent.objects.create(
        document_version=version,
        text_source="pypdf",
        full_text=text.text,
        full_text_sha256=text.sha256,
        page_count=text.page_count,
        char_count=text.char_count,
        extraction_warnings=text.warnings,
    )
    version.page_count = text.page_count
    version.char_count = text.char_count
    version.extraction_metadata = {
        "text_source": "pypdf",
        "warnings": len(text.warnings),
        "limit_exceeded": text.limit_exceeded,
    }
    version.save(update_fields=["page_count", "char_count", "extraction_metadata"])


def stored_fields(pdf: DownloadedPdf, stored: StoredObject) -> dict[str, Any]:
    return {
        "file_size_bytes": pdf.size,
        "checksum_sha256": pdf.sha256,
        "ceph_bucket": stored.bucket,
        "ceph_object_key": stored.key,
        "ceph_etag": stored.etag or "",
        "parse_status": ParseStatus.STORED,
        "processed_at": timezone.now(),
        "upload_metadata": {"uri": stored.uri, "final_url": pdf.final_url},
    }


def intake_step(
    run: WhitepaperAnalysisRun,
    event: GithubIssueEvent,
    *,
    url: str,
    status: str,
    output: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> None:
    now = timezone.now()
    WhitepaperAnalysisStep.objects.create(
        run=run,
        step_name=INTAKE_STEP,
        step_order=1,
        attempt=1,
        status=status,
        executor="torghut",
        idempotency_key=event.delivery_id or f"event-{event.pk}",
        trace_id=hashlib.sha256(f"{event.source}|{url}".encode()).hexdigest()[:32],
        started_at=event.received_at,
        completed_at=now,
        duration_ms=max(0, int((now - event.received_at).total_seconds() * 1000)),
        input_json={"event": event.event_name, "action": event.action, "attachment_url": url},
        output_json=output or {},
        error_json=error or {},
    )


def run_new(
    issue: IssueEvent,
    event: GithubIssueEvent,
    *,
    run_id: str,
    url: str,
    marker: Marker,
    version: WhitepaperDocumentVersion,
    status: str,
    **fields: Any,
) -> WhitepaperAnalysisRun:
    return WhitepaperAnalysisRun.objects.create(
        run_id=run_id,
        document=version.document,
        document_version=version,
        status=status,
        trigger_source=trigger_source(event, comment=issue.event == "issue_comment"),
        trigger_actor=issue.actor or "",
        source_delivery_id=event.delivery_id,
        orchestration_context=run_context(issue, marker, url),
        request_payload=issue.payload,
        **fields,
    )


def intake_record(
    issue: IssueEvent,
    event: GithubIssueEvent,
    *,
    run_id: str,
    url: str,
    marker: Marker,
    pdf: DownloadedPdf,
    stored: StoredObject,
    text: PdfText,
) -> WhitepaperAnalysisRun:
    with transaction.atomic():
        document = document_for(issue)
        version = version_new(
            document,
            Origin.of(issue, event),
            url=url,
            trigger="github_issue",
            **stored_fields(pdf, stored),
        )
        content_store(version, text)
        run = run_new(
            issue,
            event,
            run_id=run_id,
            url=url,
            marker=marker,
            version=version,
            status=RunStatus.QUEUED,
        )
        intake_step(
            run,
            event,
            url=url,
            status=StepStatus.COMPLETED,
            output={"sha256": pdf.sha256, "size": pdf.size, "uri": stored.uri},
        )
        document_move(document, DocumentStatus.QUEUED)
        dispatch_after_commit(run.run_id)
    return run


def intake_record_failed(
    issue: IssueEvent,
    event: GithubIssueEvent,
    *,
    run_id: str,
    url: str,
    marker: Marker,
    code: str,
    detail: str,
) -> IntakeOutcome:
    reason = f"{code}: {detail}"[:2000]
    try:
        with transaction.atomic():
            document = document_for(issue)
            version = version_new(
                document,
                Origin.of(issue, event),
                url=url,
                trigger="github_issue",
                parse_status=ParseStatus.FAILED,
                parse_error=reason,
                processed_at=timezone.now(),
            )
            run = run_new(
                issue,
                event,
                run_id=run_id,
                url=url,
                marker=marker,
                version=version,
                status=RunStatus.FAILED,
                failure_code=code,
                failure_reason=reason,
            )
            intake_step(
                run,
                event,
                url=url,
                status=StepStatus.FAILED,
                error={"code": code, "detail": detail},
            )
            document_move(document, DocumentStatus.FAILED)
    except IntegrityError:
        run_or_none = (
            WhitepaperAnalysisRun.objects.select_related("document").filter(run_id=run_id).first()
        )
        if run_or_none is None:
            raise
        return run_outcome(run_or_none, "idempotent_replay")
    return IntakeOutcome(
        accepted=False,
        reason=code,
        run_id=run.run_id,
        document_key=document.document_key,
        detail=detail,
    )
