"""The kill switch engaged or released through its flag (TRADING_KILL_SWITCH_ENABLED, env or
Flipt) is audited and posted once per flip, by beat and by each trade cycle
(trading.services.safety.kill_switch_flag_observe); two observers at once record it once."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.cache import cache
from django.db import connection, connections, transaction

from tests.servers.notify_receiver import NotifyReceiver
from trading import status_cache
from trading.models import Notification, SafetyEvent, SafetyState
from trading.schedule import trading_schedule
from trading.selectors.trading import trading_status
from trading.services.safety import KillSwitchFlagObservation, kill_switch_flag_observe
from trading.tasks import kill_switch_flag_watch


def _events() -> list[tuple[str, str, str]]:
    return list(SafetyEvent.objects.order_by("pk").values_list("kind", "actor_label", "reason"))


@pytest.mark.django_db
def test_a_flip_on_and_off_is_one_event_and_one_notification_each(
    settings, receiver: NotifyReceiver, django_capture_on_commit_callbacks, monkeypatch
):
    settings.TRADING_STATUS_CACHE_SECONDS = 2
    monkeypatch.setattr(status_cache, "_entry", None)
    cache.clear()
    settings.TRADING_KILL_SWITCH_ENABLED = False
    assert kill_switch_flag_observe().event is None  # off, as last seen (the default): nothing
    assert (_events(), Notification.objects.count()) == ([], 0)

    settings.TRADING_KILL_SWITCH_ENABLED = True
    generation = status_cache.status_generation()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        observed = kill_switch_flag_observe()
        again = kill_switch_flag_observe()
    assert observed.event is not None and again.event is None
    assert (observed.flag, again.flag) == (True, True)
    assert _events() == [("kill_switch_flag_on", "flag:env", "TRADING_KILL_SWITCH_ENABLED")]
    assert observed.event.details == {
        "flag_key": "torghut_trading_kill_switch_enabled",
        "source": "disabled",
    }
    [row] = Notification.objects.all()
    assert (row.event_id, row.kind, row.status) == (
        f"kill_switch_flag_on:{observed.event.pk}",
        "kill_switch_flag_on",
        "pending",
    )
    # the send queued after the commit and the status cache's generation moved on after it
    assert len(callbacks) == 2
    assert status_cache.status_generation() != generation
    assert SafetyState.objects.get().kill_switch_flag_seen is True
    assert trading_status()["kill_switch"] == {
        "active": True,
        "source": "flag",
        "reason": "TRADING_KILL_SWITCH_ENABLED",
    }

    settings.TRADING_KILL_SWITCH_ENABLED = False
    off = kill_switch_flag_watch.apply().result  # the beat task, in-process
    assert off is False
    assert [kind for kind, _actor, _reason in _events()] == [
        "kill_switch_flag_on",
        "kill_switch_flag_off",
    ]
    off_event = SafetyEvent.objects.get(kind="kill_switch_flag_off")
    assert sorted(Notification.objects.values_list("event_id", flat=True)) == sorted(
        [f"kill_switch_flag_on:{observed.event.pk}", f"kill_switch_flag_off:{off_event.pk}"]
    )
    assert SafetyState.objects.get().kill_switch_flag_seen is False
    assert trading_status()["kill_switch"]["active"] is False
    cache.clear()


@pytest.mark.django_db
def test_with_no_webhook_the_flip_is_still_audited(settings):
    settings.TORGHUT_NOTIFY_WEBHOOK_URL = ""
    settings.TORGHUT_NOTIFY_SLACK_WEBHOOK_URL = ""
    settings.TRADING_KILL_SWITCH_ENABLED = True
    assert kill_switch_flag_observe().event is not None
    assert _events() == [("kill_switch_flag_on", "flag:env", "TRADING_KILL_SWITCH_ENABLED")]
    assert Notification.objects.count() == 0
    # watched every minute whether or not a webhook is configured
    [entry] = [e for name, e in trading_schedule() if name == "trading-kill-switch-flag-watch"]
    assert entry == {
        "task": "trading.tasks.kill_switch_flag_watch",
        "schedule": 60.0,
        "kwargs": {},
        "options": {"expires": 60.0},
    }


@pytest.mark.django_db
def test_the_flag_off_does_not_release_a_manual_latch(settings, admin_user):
    from trading.services.safety import kill_switch_set

    settings.TRADING_STATUS_CACHE_SECONDS = 0
    settings.TRADING_KILL_SWITCH_ENABLED = True
    kill_switch_flag_observe()
    kill_switch_set(engaged=True, actor=admin_user, reason="drill")
    settings.TRADING_KILL_SWITCH_ENABLED = False
    assert kill_switch_flag_observe().event is not None
    assert trading_status()["kill_switch"] == {
        "active": True,
        "source": "manual",
        "reason": "drill",
    }
    assert [kind for kind, _a, _r in _events()] == [
        "kill_switch_flag_on",
        "kill_switch_on",
        "kill_switch_flag_off",
    ]


def _waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # else one snapshot per transaction
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
        (count,) = cursor.fetchone()
    return int(count)


@pytest.mark.django_db(transaction=True)
def test_two_observers_at_once_record_one_event(
    settings, receiver: NotifyReceiver, celery_redis_broker
):
    """Both observers read the flag as unseen, then queue on the global row's lock (held here
    until both wait); the first records the flip, the second finds it recorded."""
    settings.TRADING_KILL_SWITCH_ENABLED = True
    SafetyState.objects.create(scope="global")
    results: list[KillSwitchFlagObservation] = []

    def observe() -> None:
        try:
            results.append(kill_switch_flag_observe())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=observe) for _ in range(2)]
    with transaction.atomic():
        SafetyState.objects.select_for_update().get(scope="global")
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while _waiting_on_locks() < 2:
            assert time.monotonic() < deadline, "the observers never reached the lock"
            time.sleep(0.01)
    for thread in threads:
        thread.join(10)
    assert sorted(r.event is not None for r in results) == [False, True]
    assert _events() == [("kill_switch_flag_on", "flag:env", "TRADING_KILL_SWITCH_ENABLED")]
    assert Notification.objects.count() == 1
    assert SafetyState.objects.get().kill_switch_flag_seen is True
