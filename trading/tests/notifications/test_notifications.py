"""Operator notifications: each event is posted once to the generic signed webhook and to Slack,
after the commit, by the task; a failed post is retried with backoff; nothing waits on a webhook
inside trading code."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import override_settings

from tests.conftest import paper_lane, staff_user
from tests.servers.base import Fault
from tests.servers.notify_receiver import NotifyReceiver, signature_valid
from trading.models import Notification, SafetyEvent
from trading.notifications import (
    MAX_ATTEMPTS,
    canonical_body,
    notification_deliver,
    notify,
    notify_safety_event,
)
from trading.services.live_approvals import live_approval_approve, live_approval_request
from trading.services.safety import emergency_stop_latch, kill_switch_set
from trading.tasks import notification_send

pytestmark = pytest.mark.django_db


def test_with_no_webhook_configured_nothing_is_stored_or_queued(
    settings, django_capture_on_commit_callbacks
):
    settings.TORGHUT_NOTIFY_WEBHOOK_URL = ""
    settings.TORGHUT_NOTIFY_SLACK_WEBHOOK_URL = ""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert notify("incident", "incident:1", {"a": 1}) is None
        kill_switch_set(engaged=False, actor=None, actor_label="ops", reason="calm")
    assert (Notification.objects.count(), len(callbacks)) == (0, 0)


def test_kill_switch_is_posted_once_signed_and_to_slack(
    receiver: NotifyReceiver, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        kill_switch_set(engaged=True, actor=None, actor_label="ops", reason="halt <now> & then")
    event = SafetyEvent.objects.get(kind="kill_switch_on")
    with django_capture_on_commit_callbacks(execute=True):  # the same event raised again
        notify_safety_event(event)
    row = Notification.objects.get()
    assert (row.event_id, row.kind, row.status, row.attempts) == (
        f"kill_switch_on:{event.pk}",
        "kill_switch_on",
        "sent",
        1,
    )
    [hook] = receiver.posted("/hook")
    assert hook.body == canonical_body(row)
    assert signature_valid(hook) is True
    assert signature_valid(hook, secret="another-secret") is False
    document = hook.json()
    assert (document["event_id"], document["payload"]["reason"]) == (
        row.event_id,
        "halt <now> & then",
    )
    [slack] = receiver.posted("/slack")
    assert slack.json() == {
        "text": "[torghut] kill_switch_on: account_label=, actor=ops, "
        f"at={event.at.isoformat()}, details={{}}, reason=halt &lt;now&gt; &amp; then"
    }


@override_settings(TRADING_EMERGENCY_STOP_ENABLED=True)
def test_an_emergency_stop_latched_twice_is_posted_once(
    receiver, eager_celery, django_capture_on_commit_callbacks
):
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            emergency_stop_latch(
                reasons=["max_drawdown_exceeded"], account_label="paper", snapshot={}
            )
    row = Notification.objects.get()
    incident = SafetyEvent.objects.get(kind="emergency_stop_triggered").details["incident"]
    assert (row.event_id, row.status) == (f"emergency_stop_triggered:{incident}", "sent")
    assert [r.json()["event_id"] for r in receiver.posted("/hook")] == [row.event_id]


def test_live_approval_requested_and_granted_are_posted_once_each(
    settings, receiver, eager_celery, django_capture_on_commit_callbacks
):
    settings.TRADING_LANES = [paper_lane("paper"), paper_lane("live-1", mode="live")]
    settings.TRADING_LIVE_APPROVAL_MAX_TTL_HOURS = 24
    rita, omar = staff_user("rita", "add_liveapproval"), staff_user("omar", "approve_liveapproval")
    with django_capture_on_commit_callbacks(execute=True):
        row = live_approval_request(
            account_label="live-1", actor=rita, reason="ramp", ttl=timedelta(hours=1)
        )
        live_approval_approve(approval_id=row.pk, actor=omar, reason="checked")
    with django_capture_on_commit_callbacks(execute=True):
        for event in SafetyEvent.objects.order_by("pk"):
            notify_safety_event(event)  # raised again: nothing new
    posted = [r.json()["event_id"] for r in receiver.posted("/hook")]
    assert posted == [f"live_approval_requested:{row.pk}", f"live_approval_granted:{row.pk}"]
    assert len(receiver.posted("/slack")) == 2


def test_a_500_is_retried_with_backoff_then_sent(receiver):
    receiver.inject(Fault("POST", "/hook", status=500))
    row = notify("incident", "incident:k1", {"symbol": "AAPL"})
    assert row is not None
    first = notification_deliver(notification_id=row.pk)
    row.refresh_from_db()
    assert (first.status, first.retry_in, row.attempts, row.last_error) == (
        "pending",
        30,
        1,
        "http 500",
    )
    second = notification_deliver(notification_id=row.pk)
    row.refresh_from_db()
    assert (second.status, second.retry_in, row.status, row.attempts) == ("sent", None, "sent", 2)
    assert row.sent_at is not None
    assert len(receiver.posted("/hook")) == 2
    # a sent row is never posted again (a redelivered task)
    assert notification_deliver(notification_id=row.pk).status == "sent"
    assert len(receiver.posted("/hook")) == 2


def test_after_max_attempts_the_row_is_failed_and_left_alone(receiver):
    receiver.inject(Fault("POST", "/hook", status=503, times=MAX_ATTEMPTS + 1))
    row = notify("incident", "incident:k2", {})
    assert row is not None
    delays = [notification_deliver(notification_id=row.pk).retry_in for _ in range(MAX_ATTEMPTS)]
    assert delays == [30, 60, 120, 240, None]
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == ("failed", MAX_ATTEMPTS, "http 503")
    assert notification_deliver(notification_id=row.pk).status == "failed"
    assert len(receiver.posted("/hook")) == MAX_ATTEMPTS


def test_the_task_retries_after_a_500_and_then_sends(receiver):
    receiver.inject(Fault("POST", "/hook", status=500))
    row = notify("incident", "incident:k3", {})
    assert row is not None
    # the retry Celery schedules 30 s later runs at once under `apply` (in-process)
    result = notification_send.apply(args=(row.pk,))
    assert (result.state, result.result) == ("SUCCESS", "sent")
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, "http 500")
    assert [r.json()["event_id"] for r in receiver.posted("/hook")] == ["incident:k3"] * 2


def test_payload_text_from_outside_stays_data(receiver):
    title = '<!channel> & <https://evil.example|click>"'
    row = notify("whitepaper_verdict", "whitepaper_verdict:r1:reject", {"title": title})
    assert row is not None
    notification_deliver(notification_id=row.pk)
    [hook] = receiver.posted("/hook")
    assert json.loads(hook.body)["payload"]["title"] == title
    [slack] = receiver.posted("/slack")
    text = slack.json()["text"]
    assert text == (
        "[torghut] whitepaper_verdict: title=&lt;!channel&gt; &amp; "
        '&lt;https://evil.example|click&gt;"'
    )
    assert "<" not in text and ">" not in text
