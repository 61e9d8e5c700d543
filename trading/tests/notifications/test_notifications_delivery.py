"""A webhook that hangs cannot hold trading up: the post is the task's, on the broker, after the
commit; the task's own post ends at TORGHUT_NOTIFY_TIMEOUT_SECONDS. Bad webhook settings stop
startup naming the variable."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import override_settings
from rest_framework.test import APIClient

from tests.celery_queues import broker_at, queue_drain
from tests.conftest import manage
from tests.servers.base import Fault
from tests.servers.notify_receiver import NotifyReceiver
from torghut_site.queueing import registered_task
from trading.models import Notification, SafetyState
from trading.notifications import notification_deliver
from trading.services.safety import emergency_stop_clear, emergency_stop_latch, kill_switch_set

pytestmark = pytest.mark.django_db
HEADER = "torghut cannot start: invalid configuration"


def _queued_sends() -> list[tuple[str, list[Any]]]:
    """The tasks waiting on the `torghut` queue, with their positional arguments."""
    return [(task, args) for task, args, _kwargs in queue_drain("torghut")]


def test_a_hanging_webhook_does_not_hold_the_kill_switch(
    settings, celery_redis_broker, django_capture_on_commit_callbacks
):
    receiver = NotifyReceiver()
    receiver.start()
    try:
        receiver.configure(settings, timeout=0.5)
        receiver.inject(Fault("POST", "/hook", delay=3.0))
        registered_task("trading.tasks.notification_send")  # the task modules loaded beforehand
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True):
            kill_switch_set(engaged=True, actor=None, actor_label="ops", reason="halt")
        assert time.monotonic() - started < 1.0
        row = Notification.objects.get()
        assert receiver.posted("/hook") == []  # nothing was posted by the caller
        assert ("trading.tasks.notification_send", [row.pk]) in _queued_sends()
        # the task's post gives up at TORGHUT_NOTIFY_TIMEOUT_SECONDS and leaves a retry
        started = time.monotonic()
        result = notification_deliver(notification_id=row.pk)
        elapsed = time.monotonic() - started
    finally:
        receiver.stop()
    row.refresh_from_db()
    assert 0.4 < elapsed < 2.0
    assert (result.status, result.retry_in, row.attempts) == ("pending", 30, 1)
    assert row.last_error == "ReadTimeoutError"


@pytest.mark.parametrize(
    ("env", "problems"),
    [
        (
            {"TORGHUT_NOTIFY_WEBHOOK_URL": "ftp://hooks.example/x"},
            [
                "TORGHUT_NOTIFY_WEBHOOK_URL must be an http(s) URL with a host and no user-info",
                "TORGHUT_NOTIFY_WEBHOOK_URL requires TORGHUT_NOTIFY_WEBHOOK_SECRET",
            ],
        ),
        (
            {
                "TORGHUT_NOTIFY_SLACK_WEBHOOK_URL": "hooks.slack.com/services/x",
                "TORGHUT_NOTIFY_TIMEOUT_SECONDS": "0",
            },
            [
                "TORGHUT_NOTIFY_TIMEOUT_SECONDS=0.0 must be >= 0.1",
                "TORGHUT_NOTIFY_SLACK_WEBHOOK_URL must be an http(s) URL with a host and no "
                "user-info",
            ],
        ),
    ],
)
def test_bad_webhook_settings_stop_startup(env, problems):
    result = manage("check", env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [HEADER, *[f"  - {p}" for p in problems]]


@override_settings(TRADING_EMERGENCY_STOP_ENABLED=True)
def test_an_unreachable_celery_broker_leaves_the_row_pending_and_the_caller_unharmed(
    settings, receiver, django_capture_on_commit_callbacks, caplog
):
    emergency_stop_latch(reasons=["max_drawdown_exceeded"], account_label="paper", snapshot={})
    Notification.objects.all().delete()
    registered_task("trading.tasks.notification_send")  # the task modules loaded beforehand
    with broker_at("redis://127.0.0.1:1/0"):  # nothing listens
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True):
            emergency_stop_clear(actor=None, actor_label="ops", reason="checked")
        elapsed = time.monotonic() - started
    row = Notification.objects.get()
    assert (row.kind, row.status, row.attempts) == ("emergency_stop_cleared", "pending", 0)
    assert SafetyState.objects.get().emergency_stop_active is False  # the clear is committed
    assert elapsed < 2.0
    assert [r.getMessage() for r in caplog.records if r.name == "trading.notifications"] == [
        "notification send not queued"
    ]
    assert receiver.posted("/hook") == []


@override_settings(TRADING_EMERGENCY_STOP_ENABLED=True)
def test_the_safety_api_answers_without_waiting_on_a_hanging_webhook(
    settings, receiver, celery_redis_broker, django_capture_on_commit_callbacks
):
    """Through the HTTP API, with the sends on the real Redis broker and a webhook that would
    hang for 3 s: each request answers in well under that, and what it queued is the sends."""
    receiver.inject(Fault("POST", "/hook", delay=3.0, times=10))
    registered_task("trading.tasks.notification_send")
    user = get_user_model().objects.create_user("operator", password="x")
    user.user_permissions.add(Permission.objects.get(codename="change_safetystate"))
    client = APIClient()
    client.force_authenticate(get_user_model().objects.get(pk=user.pk))
    emergency_stop_latch(reasons=["max_drawdown_exceeded"], account_label="paper", snapshot={})
    calls = [
        ("/trading/kill-switch", {"engaged": True, "reason": "drill"}),
        ("/trading/emergency-stop/clear", {"reason": "checked"}),
    ]
    timings = []
    for url, body in calls:
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(url, body, format="json")
        timings.append(time.monotonic() - started)
        assert response.status_code == 200
    assert max(timings) < 1.0
    rows = dict(Notification.objects.values_list("kind", "pk"))
    queued = _queued_sends()
    assert ("trading.tasks.notification_send", [rows["kill_switch_on"]]) in queued
    assert ("trading.tasks.notification_send", [rows["emergency_stop_cleared"]]) in queued
    assert receiver.posted("/hook") == []  # nothing was posted by a request
