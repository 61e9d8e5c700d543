"""Operator notifications: incidents, latches, live approvals, promotions and whitepaper
verdicts, posted to the configured webhooks.

`notify` is called inside the event's own transaction: it writes one `Notification` row per
`event_id` (an event raised twice is one row: `get_or_create` on the unique column) and queues
`trading.tasks.notification_send` by name after the commit, so nothing here waits on a webhook
inside trading code, and no exception leaves `notify` except a database error of the caller's own
transaction (nor from its after-commit queueing: a Celery broker that refuses the message is
logged). With no webhook configured nothing is stored or queued.

`notification_deliver` (the task's one service call) posts to each configured target with
TORGHUT_NOTIFY_TIMEOUT_SECONDS and no redirects; it is idempotent (a sent or failed row is left
alone). A failed attempt returns the backoff before the next one (30 s doubling) and stores when
it is due (`next_attempt_at`); after a round of MAX_ATTEMPTS the row is `failed` with its last
error and, while it is younger than GIVE_UP_AFTER (24 h), its next round due after ROUND_PAUSE
(1 h). The beat sweep `notifications_requeue_lost` queues again the sends that were lost (never
attempted, or a retry overdue by STUCK_AFTER) and puts failed rows whose round is due back to
pending; an older failed row waits for an operator's resend. The generic webhook gets the canonical
JSON body (sorted keys, no spaces) signed `X-Torghut-Signature: sha256=<hex HMAC-SHA256>`; Slack
gets `{"text": ...}` with <, > and & escaped, so titles taken from outside stay text.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import urllib3
from celery import Task
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError

from torghut_site.queueing import registered_task, task_after_commit
from trading.metrics import NOTIFICATIONS
from trading.models import Incident, Notification, NotificationStatus, SafetyEvent
from trading.models.safety import SafetyEventKind

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BACKOFF_BASE_SECONDS = 30
SIGNATURE_HEADER = "X-Torghut-Signature"
SEND_TASK = "trading.tasks.notification_send"
_http = urllib3.PoolManager(retries=False)


class NotificationPostError(Exception):
    """A target refused or did not answer in time."""


@dataclass(frozen=True)
class DeliveryResult:
    status: str
    retry_in: int | None  # seconds until the next attempt, None when done


def targets_configured() -> bool:
    return bool(settings.TORGHUT_NOTIFY_WEBHOOK_URL or settings.TORGHUT_NOTIFY_SLACK_WEBHOOK_URL)


def _json_value(value: Any) -> str:
    """Times as ISO 8601, anything else (Decimal, UUID) as its text."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def notify(kind: str, event_id: str, payload: dict[str, Any]) -> Notification | None:
    """Record the event once and post it after the commit; None when no webhook is configured."""
    if not targets_configured():
        return None
    body = json.loads(json.dumps(payload, default=_json_value))  # JSON values only
    with transaction.atomic():
        row, created = Notification.objects.get_or_create(
            event_id=event_id[:200], defaults={"kind": kind, "payload": body}
        )
        if created:
            task = registered_task(SEND_TASK)  # a misspelt name fails here, not after the commit
            transaction.on_commit(lambda: _send_queue(task, row.pk))
    return row


def _send_queue(task: Task[Any, Any], notification_id: int) -> None:
    """Queue one send after the commit. The event's own work is committed already, so a Celery
    broker that refuses the message (after Celery's default publish retries: 3, 0.2 s apart) is
    logged instead of raised into the caller, and the row stays `pending` (resendable later)."""
    try:
        task.apply_async(args=(notification_id,))
    except OperationalError:
        logger.exception("notification send not queued", extra={"notification": notification_id})


# the audited safety events that are posted, with the object their event id names
_SAFETY_KINDS = {
    SafetyEventKind.KILL_SWITCH_ON: "safety_event",
    SafetyEventKind.KILL_SWITCH_OFF: "safety_event",
    SafetyEventKind.KILL_SWITCH_FLAG_ON: "safety_event",
    SafetyEventKind.KILL_SWITCH_FLAG_OFF: "safety_event",
    SafetyEventKind.EMERGENCY_STOP_TRIGGERED: "incident",
    SafetyEventKind.EMERGENCY_STOP_RECOVERED: "safety_event",
    SafetyEventKind.EMERGENCY_STOP_CLEARED: "safety_event",
    SafetyEventKind.LIVE_APPROVAL_REQUESTED: "approval_id",
    SafetyEventKind.LIVE_APPROVAL_GRANTED: "approval_id",
    SafetyEventKind.LIVE_APPROVAL_REVOKED: "approval_id",
}


def notify_safety_event(
    event: SafetyEvent, *, resolved_incidents: list[str] | None = None
) -> Notification | None:
    """Post a kill switch change (by hand, or its flag's flip), an emergency stop recovered or
    cleared (one per audited change), an emergency stop latch (one per incident) or a live
    approval requested, granted or revoked (one per approval and state). Other kinds
    (strategy edits) are not posted.
    `resolved_incidents`: the incident keys the change resolved (an emergency stop's clear)."""
    named = _SAFETY_KINDS.get(SafetyEventKind(event.kind))
    if named is None:
        return None
    key = event.pk if named == "safety_event" else event.details.get(named)
    payload = {
        "account_label": event.account_label,
        "actor": event.actor_label,
        "reason": event.reason,
        "details": event.details,
        "at": event.at,
    }
    if resolved_incidents is not None:
        payload["resolved_incidents"] = resolved_incidents
    return notify(str(event.kind), f"{event.kind}:{key}", payload)


def _incident_payload(incident: Incident, at: Any) -> dict[str, Any]:
    return {
        "incident_kind": incident.kind,
        "account_label": incident.account_label,
        "symbol": incident.symbol,
        "reasons": incident.reasons,
        "snapshot": incident.snapshot,
        "at": at,
    }


def notify_incidents(*, incident_keys: list[str]) -> None:
    """Post each of these incidents that exists (one a bulk insert skipped is not posted)."""
    for incident in Incident.objects.filter(incident_key__in=incident_keys).order_by("pk"):
        payload = _incident_payload(incident, incident.created_at)
        notify("incident", f"incident:{incident.incident_key}", payload)


def notify_incidents_resolved(*, incident_keys: list[str]) -> None:
    """Post each of these incidents that is resolved, once (`incident_resolved:<key>`)."""
    resolved = Incident.objects.filter(incident_key__in=incident_keys, resolved_at__isnull=False)
    for incident in resolved.order_by("pk"):
        payload = _incident_payload(incident, incident.resolved_at)
        notify("incident_resolved", f"incident_resolved:{incident.incident_key}", payload)


def canonical_body(row: Notification) -> bytes:
    document = {"event_id": row.event_id, "kind": row.kind, "payload": row.payload}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(row: Notification) -> bytes:
    fields = ", ".join(f"{k}={v}" for k, v in sorted(row.payload.items()))
    text = slack_escape(f"[torghut] {row.kind}: {fields}")
    return json.dumps({"text": text}).encode()


def _post(url: str, body: bytes, headers: dict[str, str]) -> None:
    timeout = urllib3.Timeout(total=settings.TORGHUT_NOTIFY_TIMEOUT_SECONDS)
    try:
        response = _http.request(
            "POST",
            url,
            body=body,
            headers={"Content-Type": "application/json", **headers},
            timeout=timeout,
            redirect=False,
            preload_content=True,
        )
    except urllib3.exceptions.HTTPError as exc:
        raise NotificationPostError(f"{type(exc).__name__}") from exc
    if not 200 <= response.status < 300:
        raise NotificationPostError(f"http {response.status}")


def _post_all(row: Notification) -> None:
    if settings.TORGHUT_NOTIFY_WEBHOOK_URL:
        body = canonical_body(row)
        sig = signature(body, settings.TORGHUT_NOTIFY_WEBHOOK_SECRET)
        _post(settings.TORGHUT_NOTIFY_WEBHOOK_URL, body, {SIGNATURE_HEADER: sig})
    if settings.TORGHUT_NOTIFY_SLACK_WEBHOOK_URL:
        _post(settings.TORGHUT_NOTIFY_SLACK_WEBHOOK_URL, slack_body(row), {})


def notification_deliver(*, notification_id: int) -> DeliveryResult:
    """One attempt at posting a pending notification (a no-op once sent or failed).

    Every target is posted on each attempt, so a receiver may see an event again after another
    target failed: receivers dedupe on `event_id`."""
    row = Notification.objects.filter(pk=notification_id).first()
    if row is None or row.status != NotificationStatus.PENDING:
        return DeliveryResult(row.status if row else "missing", None)
    try:
        _post_all(row)
    except NotificationPostError as exc:
        return _record_failure(row, str(exc))
    sent = Notification.objects.filter(pk=row.pk, status=NotificationStatus.PENDING).update(
        status=NotificationStatus.SENT,
        attempts=row.attempts + 1,
        sent_at=timezone.now(),
        next_attempt_at=None,
    )
    if sent:  # counted once, by the attempt that recorded it
        NOTIFICATIONS.labels(kind=row.kind, status=NotificationStatus.SENT).inc()
    return DeliveryResult(NotificationStatus.SENT, None)


def retry_backoff_seconds(attempts: int) -> int:
    """The pause after failed attempt number `attempts` (cumulative over rounds) within its
    round: 30 s doubling, starting again at 30 s in each round."""
    return int(BACKOFF_BASE_SECONDS * 2 ** ((attempts - 1) % MAX_ATTEMPTS))


def _record_failure(row: Notification, error: str) -> DeliveryResult:
    """Record a failed attempt: still pending with its retry due after the backoff, or, when the
    attempt ends a round of MAX_ATTEMPTS, failed with the next round due after ROUND_PAUSE (none
    once the row is GIVE_UP_AFTER old). Compare-and-set on the status and the attempts read, so
    of two attempts of the same row (a send queued twice) one records, and the other's task
    stops (the recorded one carries the retries)."""
    attempts = row.attempts + 1
    now = timezone.now()
    if attempts % MAX_ATTEMPTS:
        status, retry_in = NotificationStatus.PENDING, retry_backoff_seconds(attempts)
        due: datetime | None = now + timedelta(seconds=retry_in)
    else:
        status, retry_in = NotificationStatus.FAILED, None
        due = now + ROUND_PAUSE if row.created_at > now - GIVE_UP_AFTER else None
    recorded = Notification.objects.filter(
        pk=row.pk, status=NotificationStatus.PENDING, attempts=row.attempts
    ).update(status=status, attempts=attempts, last_error=error[:500], next_attempt_at=due)
    logger.warning("notification post failed", extra={"event_id": row.event_id, "error": error})
    if not recorded:
        return DeliveryResult(status, None)
    outcome = "retry" if status == NotificationStatus.PENDING else status
    NOTIFICATIONS.labels(kind=row.kind, status=outcome).inc()  # once, by the recording attempt
    return DeliveryResult(status, retry_in)


# a pending row this long past its due time lost its send: never attempted this long after it
# was written (the Celery broker was down at the commit, `_send_queue`), or its retry this long
# overdue (the retry message was lost: a worker killed, a broker that dropped it); the sweep
# queues it again, and a resend may put it back
STUCK_AFTER = timedelta(minutes=10)
# a failed round is tried again after this pause while the row is younger than GIVE_UP_AFTER
ROUND_PAUSE = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(hours=24)


def _lost() -> Q:
    """Pending rows whose send was lost: never attempted (no attempt due yet) STUCK_AFTER after
    being written, or with an attempt (a retry, a new round, an operator's resend) overdue by
    STUCK_AFTER."""
    cutoff = timezone.now() - STUCK_AFTER
    never_attempted = Q(attempts=0, next_attempt_at__isnull=True, created_at__lt=cutoff)
    overdue = Q(next_attempt_at__lt=cutoff)
    return Q(never_attempted | overdue, status=NotificationStatus.PENDING)


def _resendable() -> Q:
    return Q(status=NotificationStatus.FAILED) | _lost()


LOST_SWEEP_BATCH = 500


def _lost_ids() -> list[int]:
    """Pending rows whose send was lost (`_lost`), oldest first, one batch."""
    lost = Notification.objects.filter(_lost())
    return list(lost.order_by("pk").values_list("pk", flat=True)[:LOST_SWEEP_BATCH])


def _rounds_due() -> list[int]:
    """Failed rows whose next round is due, put back to pending (compare-and-set on the status
    and the due time, so of two sweeps one takes each row; attempts stay cumulative), each with
    its send queued after the commit. Their next_attempt_at becomes now: a send lost on its way
    is then an overdue retry for `_lost_ids`. The ids taken."""
    now = timezone.now()
    due = Notification.objects.filter(status=NotificationStatus.FAILED, next_attempt_at__lte=now)
    candidates = list(due.order_by("pk").values_list("pk", "next_attempt_at")[:LOST_SWEEP_BATCH])
    taken: list[int] = []
    task = registered_task(SEND_TASK)
    with transaction.atomic():
        for pk, due_at in candidates:
            if Notification.objects.filter(
                pk=pk, status=NotificationStatus.FAILED, next_attempt_at=due_at
            ).update(status=NotificationStatus.PENDING, next_attempt_at=now):
                taken.append(pk)
                transaction.on_commit(partial(_send_queue, task, pk))
    return taken


def notifications_requeue_lost() -> list[int]:
    """Beat (while a webhook is configured): queue the send again for pending rows whose send
    was lost (never attempted within STUCK_AFTER of being written, or a retry overdue by
    STUCK_AFTER), oldest first, at most LOST_SWEEP_BATCH; then put failed rows whose next round
    is due back to pending and queue their send. Rows in their retries (not overdue), sent rows
    and failed rows with no round due (not yet, or given up: an operator's resend) are left
    alone. A send queued twice posts at most twice: receivers dedupe on `event_id`. The ids
    queued."""
    ids = _lost_ids()
    if ids:
        task = registered_task(SEND_TASK)
        for pk in ids:
            _send_queue(task, pk)
    return ids + _rounds_due()


def notifications_resend(*, notification_ids: list[int]) -> list[int]:
    """Put these failed rows (and pending rows whose send was lost, `_lost`) back to pending with
    no attempts and no error, an attempt due now (so the sweep takes it again only once it is
    overdue, not for its old `created_at`), and queue each one's send after the commit. Other
    rows (sent, pending in their retries) are left alone. The ids resent."""
    with transaction.atomic():
        ids = list(
            Notification.objects.select_for_update(of=("self",))
            .filter(_resendable(), pk__in=notification_ids)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        Notification.objects.filter(pk__in=ids).update(
            status=NotificationStatus.PENDING,
            attempts=0,
            last_error="",
            next_attempt_at=timezone.now(),
        )
        for pk in ids:
            task_after_commit(SEND_TASK, pk)
    return ids
