"""A notification is not lost to a lost Celery message or a webhook outage: a pending row whose
retry is overdue by STUCK_AFTER is queued again by the sweep, and a failed row is tried again in
rounds of MAX_ATTEMPTS, ROUND_PAUSE apart, until it is GIVE_UP_AFTER old (then only an
operator's resend). Real Postgres, the real Redis broker, time-machine for the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import IntegrityError, transaction

from tests.celery_queues import queue_drain
from tests.servers.base import Fault
from tests.servers.notify_receiver import NotifyReceiver
from torghut_site.metrics import render_metrics
from trading.models import Notification
from trading.notifications import (
    GIVE_UP_AFTER,
    MAX_ATTEMPTS,
    ROUND_PAUSE,
    STUCK_AFTER,
    notification_deliver,
    notifications_requeue_lost,
    notifications_resend,
    notify,
)

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
SEND = "trading.tasks.notification_send"


def _queued() -> list[tuple[str, list[Any]]]:
    return [(task, args) for task, args, _kwargs in queue_drain("torghut")]


def _row(event_id: str) -> Notification:
    row = notify("incident", event_id, {"symbol": "AAPL"})
    assert row is not None
    return row


def _state(row: Notification) -> tuple[str, int, datetime | None]:
    row.refresh_from_db()
    return (row.status, row.attempts, row.next_attempt_at)


def _round(row: Notification) -> list[int | None]:
    """Every attempt of one round fails (503): the delays each attempt asked for."""
    return [notification_deliver(notification_id=row.pk).retry_in for _ in range(MAX_ATTEMPTS)]


def _count(kind: str, status: str) -> float:
    wanted = f'torghut_notifications_total{{kind="{kind}",status="{status}"}} '
    for line in render_metrics().decode().splitlines():
        if line.startswith(wanted):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_an_overdue_retry_is_queued_and_one_not_yet_due_is_not(
    receiver: NotifyReceiver, celery_redis_broker
):
    receiver.inject(Fault("POST", "/hook", status=503, times=2 + MAX_ATTEMPTS))
    with time_machine.travel(T0, tick=False):
        lost = _row("incident:lost-retry")  # its retry message is lost with the worker
        assert notification_deliver(notification_id=lost.pk).retry_in == 30
        sent = _row("incident:sent")
        failed = _row("incident:failed")
        _round(failed)
    assert _state(lost) == ("pending", 1, T0 + timedelta(seconds=30))
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        waiting = _row("incident:waiting")  # a retry that is due later
        assert notification_deliver(notification_id=waiting.pk).retry_in == 30
        assert notification_deliver(notification_id=sent.pk).status == "sent"
    queue_drain("torghut")
    # the retry was due at T0 + 30 s: overdue by STUCK_AFTER only strictly after T0 + 10 min 30 s
    with time_machine.travel(T0 + timedelta(seconds=30) + STUCK_AFTER, tick=False):
        assert notifications_requeue_lost() == []
    with time_machine.travel(T0 + timedelta(seconds=31) + STUCK_AFTER, tick=False):
        assert notifications_requeue_lost() == [lost.pk]
    assert _queued() == [(SEND, [lost.pk])]
    assert _state(waiting) == ("pending", 1, T0 + timedelta(minutes=10, seconds=30))
    assert _state(sent) == ("sent", 1, None)
    assert _state(failed) == ("failed", MAX_ATTEMPTS, T0 + ROUND_PAUSE)
    # the requeued send posts (the receiver's faults are used up) and the row is done
    assert notification_deliver(notification_id=lost.pk).status == "sent"
    assert _state(lost) == ("sent", 2, None)


def test_a_failed_round_is_tried_again_after_the_pause_not_before(
    receiver: NotifyReceiver, celery_redis_broker, django_capture_on_commit_callbacks
):
    kind = "round_probe"
    failed_before, retry_before = _count(kind, "failed"), _count(kind, "retry")
    receiver.inject(Fault("POST", "/hook", status=503, times=2 * MAX_ATTEMPTS))
    with time_machine.travel(T0, tick=False):
        row = notify(kind, "round_probe:1", {})
        assert row is not None
        assert _round(row) == [30, 60, 120, 240, None]
    assert _state(row) == ("failed", MAX_ATTEMPTS, T0 + ROUND_PAUSE)
    assert (_count(kind, "failed"), _count(kind, "retry")) == (failed_before + 1, retry_before + 4)
    queue_drain("torghut")
    with (
        time_machine.travel(T0 + ROUND_PAUSE - timedelta(seconds=1), tick=False),
        django_capture_on_commit_callbacks(execute=True) as early,
    ):
        assert notifications_requeue_lost() == []
    assert (_state(row), early, _queued()) == (("failed", MAX_ATTEMPTS, T0 + ROUND_PAUSE), [], [])
    with (
        time_machine.travel(T0 + ROUND_PAUSE, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert notifications_requeue_lost() == [row.pk]
    # back to pending, attempts kept, its send due now and queued after the commit
    assert _state(row) == ("pending", MAX_ATTEMPTS, T0 + ROUND_PAUSE)
    assert _queued() == [(SEND, [row.pk])]
    with time_machine.travel(T0 + ROUND_PAUSE + timedelta(minutes=1), tick=False):
        assert notifications_requeue_lost() == []  # taken once: pending now, not overdue
        # the second round fails too: backoff starts again at 30 s, the next round is scheduled
        assert _round(row) == [30, 60, 120, 240, None]
    assert _state(row) == (
        "failed",
        2 * MAX_ATTEMPTS,
        T0 + ROUND_PAUSE + timedelta(minutes=1) + ROUND_PAUSE,
    )
    assert (_count(kind, "failed"), _count(kind, "retry")) == (failed_before + 2, retry_before + 8)
    assert len(receiver.posted("/hook")) == 2 * MAX_ATTEMPTS


def test_a_round_send_that_is_lost_is_queued_again_once_overdue(
    receiver: NotifyReceiver, celery_redis_broker, django_capture_on_commit_callbacks
):
    receiver.inject(Fault("POST", "/hook", status=503, times=MAX_ATTEMPTS))
    with time_machine.travel(T0, tick=False):
        row = _row("incident:round-lost")
        _round(row)
    with (
        time_machine.travel(T0 + ROUND_PAUSE, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert notifications_requeue_lost() == [row.pk]
    queue_drain("torghut")  # the round's send is lost
    with time_machine.travel(T0 + ROUND_PAUSE + STUCK_AFTER + timedelta(seconds=1), tick=False):
        assert notifications_requeue_lost() == [row.pk]
    assert _queued() == [(SEND, [row.pk])]


def test_a_failed_row_older_than_give_up_after_stays_failed(
    receiver: NotifyReceiver, celery_redis_broker, django_capture_on_commit_callbacks
):
    receiver.inject(Fault("POST", "/hook", status=503, times=2 * MAX_ATTEMPTS))
    with time_machine.travel(T0, tick=False):
        young = _row("incident:young")
        old = _row("incident:old")
    with time_machine.travel(T0 + GIVE_UP_AFTER - timedelta(seconds=1), tick=False):
        _round(young)
    with time_machine.travel(T0 + GIVE_UP_AFTER, tick=False):
        _round(old)
    assert _state(young) == (
        "failed",
        MAX_ATTEMPTS,
        T0 + GIVE_UP_AFTER - timedelta(seconds=1) + ROUND_PAUSE,
    )
    assert _state(old) == ("failed", MAX_ATTEMPTS, None)
    queue_drain("torghut")
    with (
        time_machine.travel(T0 + 3 * GIVE_UP_AFTER, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert notifications_requeue_lost() == [young.pk]
    assert _queued() == [(SEND, [young.pk])]
    assert _state(old) == ("failed", MAX_ATTEMPTS, None)  # only an operator's resend now


def test_resend_of_a_row_with_a_round_scheduled_starts_afresh(
    receiver: NotifyReceiver, celery_redis_broker, django_capture_on_commit_callbacks
):
    receiver.inject(Fault("POST", "/hook", status=503, times=MAX_ATTEMPTS))
    with time_machine.travel(T0, tick=False):
        row = _row("incident:resent")
        _round(row)
    assert _state(row) == ("failed", MAX_ATTEMPTS, T0 + ROUND_PAUSE)
    resent_at = T0 + timedelta(hours=3)  # long after it was written
    with time_machine.travel(resent_at, tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            assert notifications_resend(notification_ids=[row.pk]) == [row.pk]
        assert _state(row) == ("pending", 0, resent_at)
        assert _queued() == [(SEND, [row.pk])]
        # the sweep does not queue it a second time for its old created_at ...
        assert notifications_requeue_lost() == []
    assert _queued() == []
    # ... only once that send is overdue (lost)
    with time_machine.travel(resent_at + STUCK_AFTER + timedelta(seconds=1), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            assert notifications_requeue_lost() == [row.pk]
    assert _queued() == [(SEND, [row.pk])]


def test_two_attempts_of_one_row_record_one_failure(receiver: NotifyReceiver):
    """A send queued twice (the sweep and a late retry): both attempts read the row at once and
    both fail; one records it (and carries the retries), the other's task stops."""
    from trading.notifications import _record_failure

    row = _row("incident:twice")
    stale = Notification.objects.get(pk=row.pk)
    first = _record_failure(stale, "http 503")
    second = _record_failure(stale, "http 502")
    assert (first.status, first.retry_in, second.retry_in) == ("pending", 30, None)
    row.refresh_from_db()
    assert (row.attempts, row.last_error) == (1, "http 503")


def test_a_sent_row_cannot_have_an_attempt_due(receiver: NotifyReceiver):
    row = _row("incident:constraint")
    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.filter(pk=row.pk).update(status="sent", sent_at=T0, next_attempt_at=T0)
