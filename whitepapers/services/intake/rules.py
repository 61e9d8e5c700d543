"""The intake rules, in the order they refuse (docs/compatibility.md#intake; the package
docstring lists them): nothing is downloaded, written or dispatched for a refused event."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError

from whitepapers.extract import pdf_text_extract
from whitepapers.github import (
    IntakeRefused,
    github_event_normalize,
    has_requeue_keyword,
    marker_parse,
    pdf_url_find,
    repository_authorize,
    run_id_for,
)
from whitepapers.models import GithubIssueEvent, WhitepaperAnalysisRun
from whitepapers.pdf import PdfFetchError
from whitepapers.services.intake.authorization import issue_authorization, marker_branches
from whitepapers.services.intake.download import attachment_download, file_replay
from whitepapers.services.intake.outcomes import (
    IntakeOutcome,
    StorageUnavailable,
    outcome_refused,
    run_outcome,
)
from whitepapers.services.intake.records import intake_record, intake_record_failed
from whitepapers.services.intake.requeue import requeue_from_comment
from whitepapers.storage import ObjectStoreError, object_put, pdf_object_key


def event_rules_apply(event: GithubIssueEvent, *, retry_storage: bool = False) -> IntakeOutcome:
    if not settings.WHITEPAPER_WORKFLOW_ENABLED:
        return outcome_refused("workflow_disabled")
    try:
        issue = github_event_normalize(
            event.payload,
            event_name=event.event_name or None,
            delivery_id=event.delivery_id or None,
        )
        repository_authorize(issue.repository, settings.WHITEPAPER_ALLOWED_REPOSITORIES)
        marker = marker_parse(
            issue.issue_body,
            start=settings.WHITEPAPER_ISSUE_MARKER_START,
            end=settings.WHITEPAPER_ISSUE_MARKER_END,
        )
        url = pdf_url_find(issue.issue_body, marker)
    except IntakeRefused as exc:
        return outcome_refused(exc.reason, exc.detail)
    comment = issue.event == "issue_comment"
    if comment and not has_requeue_keyword(
        issue.comment_body, settings.WHITEPAPER_REQUEUE_COMMENT_KEYWORD
    ):
        return outcome_refused("comment_without_requeue_keyword")
    try:  # who asks, and for which branches: before any lookup, download or write
        issue_authorization(issue)
        marker_branches(marker)
    except IntakeRefused as exc:
        return outcome_refused(exc.reason, exc.detail)

    run_id = run_id_for(issue.repository, issue.issue_number, url)
    existing = WhitepaperAnalysisRun.objects.select_related("document").filter(run_id=run_id)
    run = existing.first()
    if run is not None:
        if comment:
            return requeue_from_comment(run, issue=issue, event=event)
        return run_outcome(run, "idempotent_replay")

    try:
        pdf = attachment_download(url)
    except PdfFetchError as exc:
        return intake_record_failed(
            issue, event, run_id=run_id, url=url, marker=marker, code=exc.reason, detail=exc.detail
        )
    replay = file_replay(pdf.sha256, exclude_run_id=run_id)
    if replay is not None:
        return run_outcome(replay, "idempotent_file_replay")
    try:
        stored = object_put(pdf_object_key(pdf.sha256), pdf.data, content_type="application/pdf")
    except ObjectStoreError as exc:
        if retry_storage and exc.retryable:
            raise StorageUnavailable(exc.reason, exc.detail) from exc
        return intake_record_failed(
            issue,
            event,
            run_id=run_id,
            url=url,
            marker=marker,
            code=exc.reason,
            detail=exc.detail,
        )
    # the text is extracted before any transaction opens (a child process under limits)
    text = pdf_text_extract(pdf.data)
    try:
        run = intake_record(
            issue, event, run_id=run_id, url=url, marker=marker, pdf=pdf, stored=stored, text=text
        )
    except IntegrityError:
        # the same run (or the same object) was recorded by a concurrent processing
        run = WhitepaperAnalysisRun.objects.select_related("document").filter(run_id=run_id).first()
        if run is None:
            raise
        return run_outcome(run, "idempotent_replay")
    return run_outcome(run, "accepted")
