"""GitHub issue intake (docs/compatibility.md#intake) and the requeue path.

Every intake — Kafka (Froussard), the control API, GitHub's own webhook — first *records* the
event (`GithubIssueEvent`), then processes it with the same rules. Processing:

1. workflow off ⇒ `workflow_disabled`; not an issue/comment event we act on ⇒ `ignored_event`;
   a repository not in WHITEPAPER_ALLOWED_REPOSITORIES ⇒ `repository_not_allowed`;
2. the marker block and the PDF URL (`marker_missing`, `unsupported_workflow_marker`,
   `pdf_attachment_missing`); a comment without the requeue keyword ⇒
   `comment_without_requeue_keyword`; then who asks (`author_not_allowed`: the issue's or the
   comment's author_association, or a maintainer's trigger label) and the branches
   (`branch_invalid`, `base_branch_not_allowed`; the head is always the run's own
   `codex/whitepaper-<run>`).
   A refused event downloads nothing, writes no run and dispatches nothing;
3. the run id is deterministic: an existing run ⇒ `idempotent_replay`, or the requeue path for a
   keyword comment (`requeued`, `already_completed`, `already_dispatched`, `requeue_not_ready`);
4. download the PDF (size, redirect and type limits) — the same bytes already analysed for another
   issue ⇒ `idempotent_file_replay`;
5. store it (content-addressed object key), extract its text (`whitepapers.extract`: a child
   process under CPU, memory, time and output limits, before any transaction opens), then record
   document, version, content, run (`queued`) and the `issue_intake` step in one short
   transaction; the AgentRun dispatch is queued after the commit.

A download or storage failure is recorded whole, in one transaction: a `failed` run whose version
says why (`parse_status=failed`), never a half-written row. A keyword comment on such a run
retries the download. Processing an event twice changes nothing the second time.

Object storage that cannot be reached (or fails on its side: `ObjectStoreError.retryable`) is not
a verdict on the paper. When the caller can retry (the processing task), the event stays `pending`
with the error in its `detail`, nothing else is written, and `StorageUnavailable` is raised for a
later attempt; only the event's WHITEPAPER_STORAGE_RETRY_ATTEMPTS-th attempt records the failed
run. Attempts are counted on the event, so a sweep re-queueing it meanwhile cannot make them more.

Each attempt claims the event first (a compare-and-set on `claimed_until`/`claim_token`, held
longer than the task's hard time limit), so a duplicate message or the sweep never runs a second
copy while one is running; an event whose attempts are used up is closed as
`attempts_exhausted`, never queued again.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from torghut_site.queueing import task_after_commit, task_send
from whitepapers.extract import PdfText, pdf_text_extract
from whitepapers.github import (
    Branches,
    IntakeRefused,
    IssueEvent,
    Marker,
    actor_authorization,
    branches_resolve,
    envelope_headers,
    envelope_unwrap,
    event_name_of,
    github_event_normalize,
    has_requeue_keyword,
    head_branch_for,
    marker_parse,
    pdf_url_find,
    repository_authorize,
    run_id_for,
)
from whitepapers.metrics import WHITEPAPER_EVENTS
from whitepapers.models import (
    DocumentSource,
    DocumentStatus,
    EventSource,
    EventStatus,
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
from whitepapers.pdf import DownloadedPdf, PdfFetchError, pdf_download, pdf_fetch_policy
from whitepapers.services.runs import document_move, run_move
from whitepapers.statemachine import RETRYABLE_AGENTRUN_STATUSES
from whitepapers.storage import ObjectStoreError, StoredObject, object_put, pdf_object_key

logger = logging.getLogger(__name__)

INTAKE_STEP = "issue_intake"
# the processing task's limits (whitepapers/tasks.py); a claim outlives the hard one, so a claim
# still live means an attempt may still be running
EVENT_TASK_SOFT_TIME_LIMIT = 300
EVENT_TASK_TIME_LIMIT = 330
EVENT_CLAIM_SECONDS = EVENT_TASK_TIME_LIMIT + 60
REQUEUE_STEP = "requeue_request"

# outcomes that created or re-queued work (HTTP 202); the rest answer 200
WORK_REASONS = frozenset({"accepted", "requeued"})


class StorageUnavailable(Exception):
    """Object storage is unreachable and the event has attempts left: nothing was written for it
    but its `attempts` and `detail`; retry the event later."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class IntakeOutcome:
    accepted: bool
    reason: str
    run_id: str | None = None
    document_key: str | None = None
    agentrun_name: str | None = None
    detail: str = ""
    event_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "reason": self.reason,
            "run_id": self.run_id,
            "document_key": self.document_key,
            "agentrun_name": self.agentrun_name,
            "detail": self.detail,
            "event_id": self.event_id,
        }


def _on_commit_dispatch(run_id: str, *, force: bool = False) -> None:
    if not (force or settings.WHITEPAPER_AGENTRUN_AUTO_DISPATCH):
        return
    task_after_commit("whitepapers.tasks.dispatch_agentrun", run_id)


def _on_commit_process(event_ids: list[int]) -> None:
    def queue() -> None:
        for event_id in event_ids:
            task_send("whitepapers.tasks.process_github_event", event_id)

    transaction.on_commit(queue)


# -- recording -----------------------------------------------------------------------------------


def _summary(payload: Any, event_name: str | None) -> dict[str, Any]:
    """Indexable fields of a raw event; tolerant (the rules run later, in processing)."""
    try:
        headers, body = envelope_unwrap(payload)
    except IntakeRefused:
        headers, body = {}, {}
    if isinstance(payload, dict) and not body:
        headers = envelope_headers(payload)  # an unreadable envelope still names its event
    repository = body.get("repository")
    issue = body.get("issue")
    number = issue.get("number") if isinstance(issue, dict) else None
    full_name = repository.get("full_name") if isinstance(repository, dict) else None
    return {
        "event_name": event_name_of(body, headers, event_name)[:32],
        "action": str(body.get("action") or "")[:32],
        "repository": str(full_name or "")[:300],
        "issue_number": number
        if isinstance(number, int) and not isinstance(number, bool) and number > 0
        else None,
        "delivery_id": str(headers.get("x-github-delivery") or "")[:100],
    }


def github_event_record(
    *,
    source: str,
    payload: Any,
    event_name: str | None = None,
    delivery_id: str | None = None,
    process: bool = True,
    body_sha256: str = "",
) -> GithubIssueEvent:
    """Store one event from the API or the webhook; queue its processing after the commit.
    `body_sha256` (the webhook's raw body) is unique among webhook events: a replayed body
    raises IntegrityError like a repeated delivery id."""
    summary = _summary(payload, event_name)
    if delivery_id:
        summary["delivery_id"] = delivery_id[:100]
    event = GithubIssueEvent.objects.create(
        source=source,
        payload=payload if isinstance(payload, dict) else {"body": payload},
        received_at=timezone.now(),
        body_sha256=body_sha256,
        **summary,
    )
    if process:
        _on_commit_process([event.pk])
    return event


def github_events_record_from_kafka(rows: list[tuple[str, int, int, dict[str, Any]]]) -> list[int]:
    """Store a polled batch (topic, partition, offset, payload) in the caller's transaction; a
    record already stored (a redelivered batch) is skipped by the unique log position. Returns
    the ids still pending, whose processing is queued after the commit."""
    now = timezone.now()
    objects = [
        GithubIssueEvent(
            source=EventSource.KAFKA,
            payload=payload,
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            received_at=now,
            **_summary(payload, None),
        )
        for topic, partition, offset, payload in rows
    ]
    GithubIssueEvent.objects.bulk_create(objects, ignore_conflicts=True)
    positions = {(topic, partition, offset) for topic, partition, offset, _ in rows}
    stored = GithubIssueEvent.objects.filter(
        source=EventSource.KAFKA,
        source_topic__in={p[0] for p in positions},
        source_offset__in={p[2] for p in positions},
        status=EventStatus.PENDING,
    ).values_list("pk", "source_topic", "source_partition", "source_offset")
    pending = sorted(pk for pk, *position in stored if tuple(position) in positions)
    _on_commit_process(pending)
    return pending


def github_event_positions_reused(
    rows: list[tuple[str, int, int, dict[str, Any]]],
) -> list[tuple[str, int, int]]:
    """The log positions among `rows` that are stored with another payload: the log reused the
    offset (a topic recreated, a broker that lost acknowledged records), so the unique position
    ignored a new event. The caller dead-letters them instead of losing them."""
    payloads = {(topic, partition, offset): payload for topic, partition, offset, payload in rows}
    stored = GithubIssueEvent.objects.filter(
        source=EventSource.KAFKA,
        source_topic__in={p[0] for p in payloads},
        source_offset__in={p[2] for p in payloads},
    ).values_list("source_topic", "source_partition", "source_offset", "payload")
    reused = []
    for topic, partition, offset, payload in stored:
        position = (topic, partition or 0, offset or 0)  # a Kafka row always has both
        if position in payloads and payloads[position] != payload:
            reused.append(position)
    return sorted(reused)


# -- processing ----------------------------------------------------------------------------------


def _trigger_source(event: GithubIssueEvent, *, comment: bool) -> str:
    kind = "github_issue_comment" if comment else "github_issue"
    return f"{kind}_{event.source}"


def github_event_process(
    event_id: int, *, retry_unavailable_storage: bool = False
) -> IntakeOutcome:
    """Apply the intake rules to a recorded event, once; a processed event returns its outcome.

    The attempt first claims the event (`_claim`): while another attempt's claim is live the
    answer is `event_claimed` and nothing runs; an event whose WHITEPAPER_STORAGE_RETRY_ATTEMPTS
    attempts are used up is closed as `attempts_exhausted`. An attempt that is interrupted (a
    Celery time limit, a database error) gives its claim back and re-raises: the event stays
    pending, its attempt counted. With `retry_unavailable_storage`, unreachable object storage
    raises `StorageUnavailable` (the event stays pending) until the event's last allowed attempt,
    which records the failure.
    """
    event = GithubIssueEvent.objects.select_related("run__document").get(pk=event_id)
    if event.status == EventStatus.PROCESSED:
        return _stored_outcome(event)
    claim = _claim(event.pk)
    if claim is None:
        return _unclaimed(event)
    token, attempt = claim
    retry = retry_unavailable_storage and attempt < settings.WHITEPAPER_STORAGE_RETRY_ATTEMPTS
    try:
        outcome = _process(event, retry_storage=retry)
    except StorageUnavailable as exc:
        _release(event.pk, token, detail=f"attempt {attempt}: {exc}")
        WHITEPAPER_EVENTS.labels(source=event.source, reason="storage_retry").inc()
        logger.warning(
            "whitepaper event %s: object storage unavailable (attempt %s of %s), retrying: %s",
            event.pk,
            attempt,
            settings.WHITEPAPER_STORAGE_RETRY_ATTEMPTS,
            exc,
        )
        raise
    except BaseException as exc:
        # SoftTimeLimitExceeded and TimeLimitExceeded included: never swallowed, the claim is
        # given back so that a later (counted, capped) attempt can run
        _release(event.pk, token, detail=f"attempt {attempt} interrupted: {type(exc).__name__}")
        raise
    updated = GithubIssueEvent.objects.filter(pk=event.pk, status=EventStatus.PENDING).update(
        status=EventStatus.PROCESSED,
        accepted=outcome.accepted,
        reason=outcome.reason,
        detail=outcome.detail[:4000],
        run=WhitepaperAnalysisRun.objects.filter(run_id=outcome.run_id).first()
        if outcome.run_id
        else None,
        processed_at=timezone.now(),
        claimed_until=None,
        claim_token="",
    )
    if not updated:  # a concurrent processing finished first: its outcome is the record
        event.refresh_from_db()
        return _stored_outcome(event)
    WHITEPAPER_EVENTS.labels(source=event.source, reason=outcome.reason).inc()
    logger.info(
        "whitepaper event %s (%s) -> %s %s", event.pk, event.source, outcome.reason, outcome.run_id
    )
    return replace(outcome, event_id=event.pk)


def _claimable(now: datetime) -> Q:
    return Q(claimed_until__isnull=True) | Q(claimed_until__lte=now)


def _claim(event_id: int) -> tuple[str, int] | None:
    """Compare-and-set: a pending event with attempts left and no live claim is claimed for
    EVENT_CLAIM_SECONDS and its attempt counted. (token, attempt number), or None."""
    now = timezone.now()
    token = uuid.uuid4().hex
    claimed = (
        GithubIssueEvent.objects.filter(
            pk=event_id,
            status=EventStatus.PENDING,
            attempts__lt=settings.WHITEPAPER_STORAGE_RETRY_ATTEMPTS,
        )
        .filter(_claimable(now))
        .update(
            claimed_until=now + timedelta(seconds=EVENT_CLAIM_SECONDS),
            claim_token=token,
            attempts=F("attempts") + 1,
        )
    )
    if not claimed:
        return None
    return token, GithubIssueEvent.objects.values_list("attempts", flat=True).get(pk=event_id)


def _release(event_id: int, token: str, *, detail: str) -> None:
    """Give an unfinished attempt's claim back (only our own claim)."""
    try:
        GithubIssueEvent.objects.filter(
            pk=event_id, status=EventStatus.PENDING, claim_token=token
        ).update(claimed_until=None, claim_token="", detail=detail[:4000])
    except DatabaseError:
        # the database is what failed: the claim lapses at claimed_until instead
        logger.warning("whitepaper event %s: claim not released (database error)", event_id)


def _unclaimed(event: GithubIssueEvent) -> IntakeOutcome:
    """Why the claim failed: processed meanwhile, no attempt left, or another attempt's claim."""
    event.refresh_from_db()
    if event.status == EventStatus.PROCESSED:
        return _stored_outcome(event)
    if event.attempts >= settings.WHITEPAPER_STORAGE_RETRY_ATTEMPTS:
        github_event_exhaust(event.pk)
        event.refresh_from_db()
        if event.status == EventStatus.PROCESSED:
            return _stored_outcome(event)
    return IntakeOutcome(
        accepted=False,
        reason="event_claimed",
        detail=f"attempt {event.attempts} holds the event until {event.claimed_until}",
        event_id=event.pk,
    )


def github_event_exhaust(event_id: int) -> bool:
    """Close a pending, unclaimed event whose attempts are used up as `attempts_exhausted`
    (recorded and counted, never queued again). True when this call closed it."""
    event = GithubIssueEvent.objects.get(pk=event_id)
    closed = (
        GithubIssueEvent.objects.filter(
            pk=event_id,
            status=EventStatus.PENDING,
            attempts__gte=settings.WHITEPAPER_STORAGE_RETRY_ATTEMPTS,
        )
        .filter(_claimable(timezone.now()))
        .update(
            status=EventStatus.PROCESSED,
            accepted=False,
            reason="attempts_exhausted",
            detail=f"{event.attempts} attempts, none finished; the last: {event.detail}"[:4000],
            processed_at=timezone.now(),
            claimed_until=None,
            claim_token="",
        )
    )
    if closed:
        WHITEPAPER_EVENTS.labels(source=event.source, reason="attempts_exhausted").inc()
        logger.warning(
            "whitepaper event %s: %s attempts used up, closed as attempts_exhausted",
            event_id,
            event.attempts,
        )
    return bool(closed)


def _stored_outcome(event: GithubIssueEvent) -> IntakeOutcome:
    run = event.run
    return IntakeOutcome(
        accepted=bool(event.accepted),
        reason=event.reason,
        run_id=run.run_id if run else None,
        document_key=run.document.document_key if run else None,
        agentrun_name=_latest_agentrun_name(run) if run else None,
        detail=event.detail,
        event_id=event.pk,
    )


def _latest_agentrun_name(run: WhitepaperAnalysisRun) -> str | None:
    latest = run.agentruns.order_by("-attempt").first()
    return latest.agentrun_name if latest else None


def _refused(reason: str, detail: str = "") -> IntakeOutcome:
    return IntakeOutcome(accepted=False, reason=reason, detail=detail)


def _run_outcome(
    run: WhitepaperAnalysisRun, reason: str, *, accepted: bool = True
) -> IntakeOutcome:
    return IntakeOutcome(
        accepted=accepted,
        reason=reason,
        run_id=run.run_id,
        document_key=run.document.document_key,
        agentrun_name=_latest_agentrun_name(run),
        detail=run.failure_reason if run.status == RunStatus.FAILED else "",
    )


def _process(event: GithubIssueEvent, *, retry_storage: bool = False) -> IntakeOutcome:
    if not settings.WHITEPAPER_WORKFLOW_ENABLED:
        return _refused("workflow_disabled")
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
        return _refused(exc.reason, exc.detail)
    comment = issue.event == "issue_comment"
    if comment and not has_requeue_keyword(
        issue.comment_body, settings.WHITEPAPER_REQUEUE_COMMENT_KEYWORD
    ):
        return _refused("comment_without_requeue_keyword")
    try:  # who asks, and for which branches: before any lookup, download or write
        _authorization(issue)
        _branches(marker)
    except IntakeRefused as exc:
        return _refused(exc.reason, exc.detail)

    run_id = run_id_for(issue.repository, issue.issue_number, url)
    existing = WhitepaperAnalysisRun.objects.select_related("document").filter(run_id=run_id)
    run = existing.first()
    if run is not None:
        if comment:
            return _requeue(run, issue=issue, event=event)
        return _run_outcome(run, "idempotent_replay")

    try:
        pdf = _download(url)
    except PdfFetchError as exc:
        return _record_failed_intake(
            issue, event, run_id=run_id, url=url, marker=marker, code=exc.reason, detail=exc.detail
        )
    replay = _file_replay(pdf.sha256, exclude_run_id=run_id)
    if replay is not None:
        return _run_outcome(replay, "idempotent_file_replay")
    try:
        stored = object_put(pdf_object_key(pdf.sha256), pdf.data, content_type="application/pdf")
    except ObjectStoreError as exc:
        if retry_storage and exc.retryable:
            raise StorageUnavailable(exc.reason, exc.detail) from exc
        return _record_failed_intake(
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
        run = _record_intake(
            issue, event, run_id=run_id, url=url, marker=marker, pdf=pdf, stored=stored, text=text
        )
    except IntegrityError:
        # the same run (or the same object) was recorded by a concurrent processing
        run = WhitepaperAnalysisRun.objects.select_related("document").filter(run_id=run_id).first()
        if run is None:
            raise
        return _run_outcome(run, "idempotent_replay")
    return _run_outcome(run, "accepted")


def _download(url: str) -> DownloadedPdf:
    # the issue body chose `url`: the outbound policy decides what it may reach, and the token
    return pdf_download(url, policy=pdf_fetch_policy())


_REPLAY_PREFERENCE: dict[str, int] = {
    RunStatus.COMPLETED: 0,
    RunStatus.AGENTRUN_DISPATCHED: 1,
    RunStatus.QUEUED: 2,
}


def _file_replay(sha256: str, *, exclude_run_id: str) -> WhitepaperAnalysisRun | None:
    candidates = list(
        WhitepaperAnalysisRun.objects.select_related("document")
        .filter(
            document_version__checksum_sha256=sha256,
            document_version__parse_status=ParseStatus.STORED,
        )
        .exclude(run_id=exclude_run_id)
        .order_by("created_at")
    )
    if not candidates:
        return None
    return min(candidates, key=lambda r: _REPLAY_PREFERENCE.get(r.status, 3))


def _authorization(issue: IssueEvent) -> str:
    return actor_authorization(
        issue,
        associations=settings.WHITEPAPER_ALLOWED_AUTHOR_ASSOCIATIONS,
        trigger_label=settings.WHITEPAPER_TRIGGER_LABEL,
    )


def _branches(marker: Marker) -> Branches:
    return branches_resolve(
        marker,
        default_base=settings.WHITEPAPER_DEFAULT_BASE_BRANCH,
        allowed_bases=settings.WHITEPAPER_ALLOWED_BASE_BRANCHES,
    )


def _context(issue: IssueEvent, marker: Marker, url: str) -> dict[str, Any]:
    """The run's orchestration context. The base branch is the validated one (`_process` refused
    the event otherwise), the head the run's own; the marker's text stays under `marker`, as
    data."""
    branches = _branches(marker)
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
        "authorized_by": _authorization(issue),
    }


def _document_for(issue: IssueEvent) -> WhitepaperDocument:
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
class _Origin:
    """Who and what a new document version came from."""

    issue_number: int | None
    actor: str
    source: str
    delivery_id: str

    @classmethod
    def of(cls, issue: IssueEvent, event: GithubIssueEvent) -> _Origin:
        return cls(issue.issue_number, issue.actor or "", event.source, event.delivery_id)


def _new_version(
    document: WhitepaperDocument, origin: _Origin, *, url: str, trigger: str, **fields: Any
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


def _store_content(version: WhitepaperDocumentVersion, text: PdfText) -> None:
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


def _stored_fields(pdf: DownloadedPdf, stored: StoredObject) -> dict[str, Any]:
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


def _intake_step(
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


def _new_run(
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
        trigger_source=_trigger_source(event, comment=issue.event == "issue_comment"),
        trigger_actor=issue.actor or "",
        source_delivery_id=event.delivery_id,
        orchestration_context=_context(issue, marker, url),
        request_payload=issue.payload,
        **fields,
    )


def _record_intake(
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
        document = _document_for(issue)
        version = _new_version(
            document,
            _Origin.of(issue, event),
            url=url,
            trigger="github_issue",
            **_stored_fields(pdf, stored),
        )
        _store_content(version, text)
        run = _new_run(
            issue,
            event,
            run_id=run_id,
            url=url,
            marker=marker,
            version=version,
            status=RunStatus.QUEUED,
        )
        _intake_step(
            run,
            event,
            url=url,
            status=StepStatus.COMPLETED,
            output={"sha256": pdf.sha256, "size": pdf.size, "uri": stored.uri},
        )
        document_move(document, DocumentStatus.QUEUED)
        _on_commit_dispatch(run.run_id)
    return run


def _record_failed_intake(
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
            document = _document_for(issue)
            version = _new_version(
                document,
                _Origin.of(issue, event),
                url=url,
                trigger="github_issue",
                parse_status=ParseStatus.FAILED,
                parse_error=reason,
                processed_at=timezone.now(),
            )
            run = _new_run(
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
            _intake_step(
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
        return _run_outcome(run_or_none, "idempotent_replay")
    return IntakeOutcome(
        accepted=False,
        reason=code,
        run_id=run.run_id,
        document_key=document.document_key,
        detail=detail,
    )


# -- requeue ------------------------------------------------------------------------------------


def _requeue(
    run: WhitepaperAnalysisRun, *, issue: IssueEvent, event: GithubIssueEvent
) -> IntakeOutcome:
    return run_requeue(
        run,
        origin=_Origin.of(issue, event),
        trigger_source=_trigger_source(event, comment=True),
        note=(issue.comment_body or "")[:2000],
    )


def run_requeue(
    run: WhitepaperAnalysisRun, *, origin: _Origin, trigger_source: str, note: str = ""
) -> IntakeOutcome:
    """Queue another analysis attempt of a run (a keyword comment, or an operator in the admin).

    `already_completed` for a completed run; a run whose PDF never got stored first retries the
    download (`requeue_not_ready` when that fails again); `already_dispatched` while the latest
    AgentRun is alive (or this attempt was already requested); else `requeued` with the next
    attempt, dispatched after the commit.
    """
    if run.status == RunStatus.COMPLETED:
        return _run_outcome(run, "already_completed")
    version = run.document_version
    if version is None or version.parse_status != ParseStatus.STORED:
        not_ready = _refetch(run, origin=origin)
        if not_ready is not None:
            return not_ready
    latest = run.agentruns.order_by("-attempt").first()
    if latest is not None and latest.status not in RETRYABLE_AGENTRUN_STATUSES:
        return _run_outcome(run, "already_dispatched")
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
            return _run_outcome(locked, "already_dispatched")
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
        _on_commit_dispatch(locked.run_id, force=True)
    return _run_outcome(locked, "requeued")


def admin_requeue(run: WhitepaperAnalysisRun, *, actor: str) -> IntakeOutcome:
    origin = _Origin(run.issue_number, actor, "admin", f"admin-{timezone.now().isoformat()}")
    return run_requeue(run, origin=origin, trigger_source="admin_requeue", note="admin action")


def _refetch(run: WhitepaperAnalysisRun, *, origin: _Origin) -> IntakeOutcome | None:
    """Download a run's PDF again (it never got stored). None once it is stored."""
    url = str(run.orchestration_context.get("attachment_url", ""))
    try:
        pdf = _download(url)
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
                version = _new_version(
                    document,
                    origin,
                    url=url,
                    trigger="requeue_refetch",
                    **_stored_fields(pdf, stored),
                )
                _store_content(version, text)
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
