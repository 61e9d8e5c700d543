"""Failed notification rows: the admin lists them and resends them (permission-guarded, audited
in the admin log, queued after the commit); /metrics counts post outcomes and rows by status."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.test import Client
from django.utils import timezone

from tests.conftest import staff_user
from tests.servers.base import Fault
from tests.servers.notify_receiver import NotifyReceiver
from torghut_site.metrics import render_metrics
from trading.models import Notification
from trading.notifications import MAX_ATTEMPTS, STUCK_AFTER, notification_deliver, notify

pytestmark = pytest.mark.django_db

PAGE = "/admin/trading/notification/"


def _failed(receiver: NotifyReceiver, event_id: str) -> Notification:
    """A row whose every attempt got a 503: left failed with its last error."""
    receiver.inject(Fault("POST", "/hook", status=503, times=MAX_ATTEMPTS))
    row = notify("incident", event_id, {"symbol": "AAPL"})
    assert row is not None
    for _ in range(MAX_ATTEMPTS):
        notification_deliver(notification_id=row.pk)
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == ("failed", MAX_ATTEMPTS, "http 503")
    return row


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _sample(name: str, **labels: str) -> float | None:
    wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}")
    for line in render_metrics().decode().splitlines():
        if line.startswith(wanted + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_the_admin_lists_rows_and_filters_failed_ones(receiver):
    failed = _failed(receiver, "incident:k-failed")
    notify("incident", "incident:k-pending", {})
    viewer = staff_user("vera", "view_notification")
    listing = _client(viewer).get(PAGE, {"status__exact": "failed"})
    assert listing.status_code == 200
    assert [row.pk for row in listing.context["cl"].result_list] == [failed.pk]
    html = listing.content.decode()
    assert "incident:k-failed" in html and "http 503" in html
    assert "resend_failed" not in html  # a viewer is offered no resend


def test_resend_puts_failed_and_lost_rows_back_and_sends_them_after_the_commit(
    receiver, eager_celery, django_capture_on_commit_callbacks
):
    failed = _failed(receiver, "incident:k-resend")
    sent = notify("incident", "incident:k-sent", {})
    lost = notify("incident", "incident:k-lost", {})  # its send never queued (broker down)
    waiting = notify("incident", "incident:k-waiting", {})  # just written: its send is queued
    assert sent is not None and lost is not None and waiting is not None
    notification_deliver(notification_id=sent.pk)
    Notification.objects.filter(pk=lost.pk).update(
        created_at=timezone.now() - STUCK_AFTER - timedelta(seconds=1)
    )
    before = len(receiver.posted("/hook"))
    operator = staff_user("olga", "view_notification", "change_notification")
    chosen = [failed.pk, sent.pk, lost.pk, waiting.pk]
    with django_capture_on_commit_callbacks(execute=True):
        response = _client(operator).post(
            PAGE,
            {"action": "resend_failed", "index": 0, "_selected_action": chosen},
            follow=True,
        )
    assert response.status_code == 200
    assert [str(m) for m in response.context["messages"]] == [
        "2 queued again; 2 left alone (sent, or pending in retries)"
    ]
    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.last_error) == ("sent", 1, "")
    statuses = dict(Notification.objects.values_list("event_id", "status"))
    assert (statuses["incident:k-lost"], statuses["incident:k-waiting"]) == ("sent", "pending")
    assert [r.json()["event_id"] for r in receiver.posted("/hook")[before:]] == [
        "incident:k-resend",
        "incident:k-lost",
    ]
    entries = LogEntry.objects.order_by("pk")
    assert [(e.user_id, e.object_id, e.action_flag, e.change_message) for e in entries] == [
        (operator.pk, str(pk), CHANGE, "Resend: back to pending, send queued")
        for pk in (failed.pk, lost.pk)
    ]


def test_resend_is_refused_without_the_change_permission(
    receiver, django_capture_on_commit_callbacks
):
    failed = _failed(receiver, "incident:k-refused")
    viewer = staff_user("vera", "view_notification")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _client(viewer).post(
            PAGE, {"action": "resend_failed", "index": 0, "_selected_action": [failed.pk]}
        )
    assert response.status_code == 200  # the changelist again: no such action for this user
    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.last_error) == (
        "failed",
        MAX_ATTEMPTS,
        "http 503",
    )
    assert (LogEntry.objects.count(), len(callbacks)) == (0, 0)


def test_metrics_count_outcomes_and_rows_by_status(receiver):
    sent_before = _sample("torghut_notifications_total", kind="metric_probe", status="sent") or 0
    retry_before = _sample("torghut_notifications_total", kind="metric_probe", status="retry") or 0
    failed_before = (
        _sample("torghut_notifications_total", kind="metric_probe", status="failed") or 0
    )
    receiver.inject(Fault("POST", "/hook", status=500, times=MAX_ATTEMPTS + 1))
    bad = notify("metric_probe", "metric_probe:bad", {})
    good = notify("metric_probe", "metric_probe:good", {})
    assert bad is not None and good is not None
    for _ in range(MAX_ATTEMPTS):
        notification_deliver(notification_id=bad.pk)
    notification_deliver(notification_id=good.pk)  # the sixth 500: a retry
    notification_deliver(notification_id=good.pk)
    notify("metric_probe", "metric_probe:waiting", {})
    assert (
        _sample("torghut_notifications_total", kind="metric_probe", status="sent"),
        _sample("torghut_notifications_total", kind="metric_probe", status="retry"),
        _sample("torghut_notifications_total", kind="metric_probe", status="failed"),
    ) == (sent_before + 1, retry_before + MAX_ATTEMPTS, failed_before + 1)
    assert (
        _sample("torghut_notifications_rows", status="pending"),
        _sample("torghut_notifications_rows", status="sent"),
        _sample("torghut_notifications_rows", status="failed"),
    ) == (1.0, 1.0, 1.0)


def test_the_sweep_queues_again_only_sends_that_were_lost(receiver, eager_celery, settings):
    from trading.notifications import notifications_requeue_lost
    from trading.schedule import trading_schedule

    lost = notify("incident", "incident:k-swept", {"symbol": "AAPL"})  # broker down at commit
    fresh = notify("incident", "incident:k-fresh", {})  # its send may still be on its way
    retrying = notify("incident", "incident:k-retrying", {})
    _failed(receiver, "incident:k-failed-stays")
    assert lost is not None and fresh is not None and retrying is not None
    receiver.inject(Fault("POST", "/hook", status=503, times=1))
    notification_deliver(notification_id=retrying.pk)  # one attempt, now in its backoff
    old = timezone.now() - STUCK_AFTER - timedelta(seconds=1)
    Notification.objects.exclude(pk=fresh.pk).update(created_at=old)
    before = len(receiver.posted("/hook"))

    assert notifications_requeue_lost() == [lost.pk]

    posted = receiver.posted("/hook")[before:]
    assert [post.json()["event_id"] for post in posted] == ["incident:k-swept"]
    statuses = dict(Notification.objects.values_list("event_id", "status"))
    assert statuses == {
        "incident:k-swept": "sent",
        "incident:k-fresh": "pending",
        "incident:k-retrying": "pending",
        "incident:k-failed-stays": "failed",
    }
    assert notifications_requeue_lost() == []  # sent now: nothing left to queue
    # scheduled every 5 minutes while a webhook is configured, not otherwise
    names = [name for name, _ in trading_schedule() if name == "trading-notifications-requeue"]
    assert names == ["trading-notifications-requeue"]
    settings.TORGHUT_NOTIFY_WEBHOOK_URL = ""
    settings.TORGHUT_NOTIFY_SLACK_WEBHOOK_URL = ""
    assert [name for name, _ in trading_schedule() if "requeue" in name] == []
