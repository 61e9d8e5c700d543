"""The latch releases, revoked live approvals and unknown orders are posted to the operators'
webhooks: one row and one signed post per event id, after the commit; nothing is written with no
webhook configured."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import override_settings

from tests.conftest import paper_lane, staff_user
from tests.servers.notify_receiver import NotifyReceiver, signature_valid
from trading.models import Incident, LaneState, Notification, SafetyEvent
from trading.notifications import canonical_body, notify_safety_event
from trading.schedule import trading_schedule
from trading.services.live_approvals import (
    live_approval_approve,
    live_approval_request,
    live_approval_revoke,
    live_approvals_expired_notify,
)
from trading.services.safety import (
    emergency_stop_clear,
    emergency_stop_evaluate,
    emergency_stop_latch,
)

pytestmark = pytest.mark.django_db


def _the_one_post(receiver: NotifyReceiver, row: Notification) -> Any:
    """The generic webhook got exactly this row's canonical body, signed; Slack got it too."""
    [hook] = [r for r in receiver.posted("/hook") if r.json()["event_id"] == row.event_id]
    assert hook.body == canonical_body(row)
    assert signature_valid(hook) is True
    assert signature_valid(hook, secret="not-the-secret") is False
    assert len(receiver.posted("/slack")) == len(receiver.posted("/hook"))
    return hook.json()


@override_settings(TRADING_EMERGENCY_STOP_ENABLED=True)
def test_an_emergency_stop_cleared_by_hand_is_posted_once_with_its_incident(
    receiver, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        emergency_stop_latch(reasons=["max_drawdown_exceeded"], account_label="paper", snapshot={})
    with django_capture_on_commit_callbacks(execute=True):
        emergency_stop_clear(actor=None, actor_label="rita", reason="checked the book")
    event = SafetyEvent.objects.get(kind="emergency_stop_cleared")
    with django_capture_on_commit_callbacks(execute=True):  # the same event raised again
        notify_safety_event(event, resolved_incidents=[])
    incident = Incident.objects.get()
    row = Notification.objects.get(kind="emergency_stop_cleared")
    assert (row.event_id, row.status, row.attempts) == (
        f"emergency_stop_cleared:{event.pk}",
        "sent",
        1,
    )
    assert _the_one_post(receiver, row) == {
        "event_id": f"emergency_stop_cleared:{event.pk}",
        "kind": "emergency_stop_cleared",
        "payload": {
            "account_label": "",
            "actor": "rita",
            "reason": "checked the book",
            "details": {"reasons": ["max_drawdown_exceeded"]},
            "at": event.at.isoformat(),
            "resolved_incidents": [incident.incident_key],
        },
    }
    assert incident.resolved_at is not None
    assert [r.json()["kind"] for r in receiver.posted("/hook")] == [
        "emergency_stop_triggered",
        "emergency_stop_cleared",
    ]


@override_settings(
    TRADING_EMERGENCY_STOP_ENABLED=True,
    TRADING_EMERGENCY_STOP_RECOVERY_CYCLES=2,
    TRADING_ROLLBACK_SIGNAL_LAG_SECONDS_LIMIT=600,
)
def test_an_emergency_stop_that_recovers_by_itself_is_posted_once(
    receiver, eager_celery, django_capture_on_commit_callbacks
):
    lane = LaneState.objects.create(
        account_label="paper", market_open=True, signal_lag_seconds=900.0
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert emergency_stop_evaluate(lane=lane, snapshot={}).triggered is True
    lane.signal_lag_seconds = 5.0
    for _ in range(4):  # two clean cycles recover it; the next two find nothing latched
        with django_capture_on_commit_callbacks(execute=True):
            emergency_stop_evaluate(lane=lane, snapshot={})
    event = SafetyEvent.objects.get(kind="emergency_stop_recovered")
    with django_capture_on_commit_callbacks(execute=True):  # the same event raised again
        notify_safety_event(event, resolved_incidents=[])
    incident = Incident.objects.get()
    row = Notification.objects.get(kind="emergency_stop_recovered")
    assert (row.event_id, row.status) == (f"emergency_stop_recovered:{event.pk}", "sent")
    payload = _the_one_post(receiver, row)["payload"]
    assert (payload["actor"], payload["details"], payload["resolved_incidents"]) == (
        "system",
        {"reasons": ["signal_lag_exceeded:900s"]},
        [incident.incident_key],
    )
    assert Notification.objects.count() == 2  # triggered, recovered


def test_a_revoked_live_approval_is_posted_once(
    settings, receiver, eager_celery, django_capture_on_commit_callbacks
):
    settings.TRADING_LANES = [paper_lane("paper"), paper_lane("live-1", mode="live")]
    settings.TRADING_LIVE_APPROVAL_MAX_TTL_HOURS = 24
    rita, omar = staff_user("rita", "add_liveapproval"), staff_user("omar", "approve_liveapproval")
    with django_capture_on_commit_callbacks(execute=True):
        approval = live_approval_request(
            account_label="live-1", actor=rita, reason="ramp", ttl=timedelta(hours=1)
        )
        live_approval_approve(approval_id=approval.pk, actor=omar, reason="checked")
        live_approval_revoke(approval_id=approval.pk, actor=omar, reason="pulled")
    event = SafetyEvent.objects.get(kind="live_approval_revoked")
    with django_capture_on_commit_callbacks(execute=True):
        notify_safety_event(event)  # raised again: no new row, no new post
    row = Notification.objects.get(kind="live_approval_revoked")
    assert (row.event_id, row.status) == (f"live_approval_revoked:{approval.pk}", "sent")
    assert _the_one_post(receiver, row)["payload"] == {
        "account_label": "live-1",
        "actor": "omar",
        "reason": "pulled",
        "details": {"approval_id": approval.pk, "previous_status": "approved"},
        "at": event.at.isoformat(),
    }
    assert [r.json()["kind"] for r in receiver.posted("/hook")] == [
        "live_approval_requested",
        "live_approval_granted",
        "live_approval_revoked",
    ]


@override_settings(
    TRADING_EMERGENCY_STOP_ENABLED=True,
    TRADING_EMERGENCY_STOP_RECOVERY_CYCLES=1,
    TRADING_ROLLBACK_SIGNAL_LAG_SECONDS_LIMIT=600,
)
def test_with_no_webhook_the_new_events_write_nothing(settings, django_capture_on_commit_callbacks):
    settings.TORGHUT_NOTIFY_WEBHOOK_URL = ""
    settings.TORGHUT_NOTIFY_SLACK_WEBHOOK_URL = ""
    settings.TRADING_LANES = [paper_lane("paper"), paper_lane("live-1", mode="live")]
    settings.TRADING_LIVE_APPROVAL_MAX_TTL_HOURS = 24
    rita = staff_user("rita", "add_liveapproval", "change_liveapproval")
    lane = LaneState.objects.create(
        account_label="paper", market_open=True, signal_lag_seconds=900.0
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        emergency_stop_evaluate(lane=lane, snapshot={})
        lane.signal_lag_seconds = 5.0
        assert emergency_stop_evaluate(lane=lane, snapshot={}).recovered is True
        emergency_stop_latch(reasons=["max_drawdown_exceeded"], account_label="paper", snapshot={})
        emergency_stop_clear(actor=None, actor_label="rita", reason="checked")
        approval = live_approval_request(
            account_label="live-1", actor=rita, reason="ramp", ttl=timedelta(hours=1)
        )
        live_approval_revoke(approval_id=approval.pk, actor=rita, reason="not now")
    assert SafetyEvent.objects.count() == 6
    # only emergency_stop_latch's cancel-all task is queued: no notification task, no row
    assert Notification.objects.count() == 0
    assert len(callbacks) == 1


T0 = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)


def test_a_lapsed_request_and_an_expired_approval_are_posted_once_each(
    settings, receiver, eager_celery, django_capture_on_commit_callbacks
):
    settings.TRADING_LANES = [paper_lane("paper"), paper_lane("live-1", mode="live")]
    settings.TRADING_LIVE_APPROVAL_MAX_TTL_HOURS = 24
    rita = staff_user("rita", "add_liveapproval", "change_liveapproval")
    omar = staff_user("omar", "approve_liveapproval")
    hour = timedelta(hours=1)
    with time_machine.travel(T0, tick=False):
        lapsing = live_approval_request(account_label="live-1", actor=rita, reason="a", ttl=hour)
        approved = live_approval_request(account_label="live-1", actor=rita, reason="b", ttl=hour)
        revoked = live_approval_request(account_label="live-1", actor=rita, reason="c", ttl=hour)
        live_approval_revoke(approval_id=revoked.pk, actor=rita, reason="no")
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        live_approval_approve(approval_id=approved.pk, actor=omar, reason="ok")
    raised = []
    for minutes in (30, 65, 66, 75, 76):
        with django_capture_on_commit_callbacks(execute=True):
            raised.append(live_approvals_expired_notify(now=T0 + timedelta(minutes=minutes)))
    assert raised == [
        [],
        [f"live_approval_expired:{lapsing.pk}"],
        [f"live_approval_expired:{lapsing.pk}"],  # raised again: the same row, no new post
        [f"live_approval_expired:{lapsing.pk}", f"live_approval_expired:{approved.pk}"],
        [f"live_approval_expired:{lapsing.pk}", f"live_approval_expired:{approved.pk}"],
    ]
    rows = list(Notification.objects.filter(kind="live_approval_expired").order_by("pk"))
    assert [(r.event_id, r.status) for r in rows] == [
        (f"live_approval_expired:{lapsing.pk}", "sent"),
        (f"live_approval_expired:{approved.pk}", "sent"),
    ]
    assert _the_one_post(receiver, rows[0])["payload"] == {
        "account_label": "live-1",
        "approval_id": lapsing.pk,
        "status": "requested",
        "reason": "a",
        "at": (T0 + hour).isoformat(),
    }
    assert _the_one_post(receiver, rows[1])["payload"] == {
        "account_label": "live-1",
        "approval_id": approved.pk,
        "status": "approved",
        "reason": "b",
        "at": (T0 + timedelta(minutes=70)).isoformat(),
    }
    # a day later the sweep no longer looks at them
    assert live_approvals_expired_notify(now=T0 + timedelta(days=2)) == []


def test_expiry_is_swept_only_while_a_webhook_is_configured(settings, receiver):
    settings.TRADING_LANES = [paper_lane("paper")]
    assert [name for name, _ in trading_schedule() if "expiry" in name] == [
        "trading-live-approval-expiry-notify"
    ]
    settings.TORGHUT_NOTIFY_WEBHOOK_URL = ""
    settings.TORGHUT_NOTIFY_SLACK_WEBHOOK_URL = ""
    assert [name for name, _ in trading_schedule() if "expiry" in name] == []
    rita = staff_user("rita", "add_liveapproval")
    settings.TRADING_LANES = [paper_lane("paper"), paper_lane("live-1", mode="live")]
    settings.TRADING_LIVE_APPROVAL_MAX_TTL_HOURS = 24
    with time_machine.travel(T0, tick=False):
        live_approval_request(
            account_label="live-1", actor=rita, reason="a", ttl=timedelta(hours=1)
        )
    assert live_approvals_expired_notify(now=T0 + timedelta(hours=2)) == []
    assert Notification.objects.count() == 0
