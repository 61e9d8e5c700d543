"""Processing a recorded event once: the claim (a compare-and-set held longer than the task's
hard time limit), the rules (`rules.event_rules_apply`), the outcome recorded on the event, and
the closing of an event whose attempts are used up."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError
from django.db.models import F, Q
from django.utils import timezone

from whitepapers.metrics import WHITEPAPER_EVENTS
from whitepapers.models import EventStatus, GithubIssueEvent, WhitepaperAnalysisRun
from whitepapers.services.intake.outcomes import IntakeOutcome, StorageUnavailable, stored_outcome
from whitepapers.services.intake.rules import event_rules_apply

# the package's one logger name, as before the split (log pipelines filter on it)
logger = logging.getLogger("whitepapers.services.intake")

# the processing task's limits (whitepapers/tasks.py); a claim outlives the hard one, so a claim
# still live means an attempt may still be running
EVENT_TASK_SOFT_TIME_LIMIT = 300
EVENT_TASK_TIME_LIMIT = 330
EVENT_CLAIM_SECONDS = EVENT_TASK_TIME_LIMIT + 60


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
        return stored_outcome(event)
    claim = _claim(event.pk)
    if claim is None:
        return _unclaimed(event)
    token, attempt = claim
    retry = retry_unavailable_storage and attempt < settings.WHITEPAPER_STORAGE_RETRY_ATTEMPTS
    try:
        outcome = event_rules_apply(event, retry_storage=retry)
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
        return stored_outcome(event)
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
        return stored_outcome(event)
    if event.attempts >= settings.WHITEPAPER_STORAGE_RETRY_ATTEMPTS:
        github_event_exhaust(event.pk)
        event.refresh_from_db()
        if event.status == EventStatus.PROCESSED:
            return stored_outcome(event)
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
