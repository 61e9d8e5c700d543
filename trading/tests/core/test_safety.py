from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.files.storage import storages
from django.test import override_settings

from trading.models import Incident, LaneState, SafetyEvent, SafetyState
from trading.selectors.safety import kill_switch_state
from trading.services.equity import lane_equity_track
from trading.services.safety import (
    DailyLossLockedError,
    SafetyActionError,
    emergency_stop_clear,
    emergency_stop_evaluate,
    emergency_stop_latch,
    kill_switch_set,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():
    return get_user_model().objects.create_user("op", password="x")


@override_settings(TRADING_KILL_SWITCH_ENABLED=False)
def test_manual_kill_switch_is_persisted_and_audited(operator, django_capture_on_commit_callbacks):
    assert kill_switch_state().active is False
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        kill_switch_set(engaged=True, actor=operator, reason="fat finger on AAPL")
    assert len(callbacks) == 1  # cancel-all queued only after the commit
    state = kill_switch_state()
    assert (state.active, state.source, state.reason) == (True, "manual", "fat finger on AAPL")
    kill_switch_set(engaged=False, actor=operator, reason="checked")
    assert kill_switch_state().active is False
    events = list(SafetyEvent.objects.order_by("pk").values_list("kind", "actor_label", "reason"))
    assert events == [
        ("kill_switch_on", "op", "fat finger on AAPL"),
        ("kill_switch_off", "op", "checked"),
    ]


@override_settings(TRADING_KILL_SWITCH_ENABLED=True)
def test_env_kill_switch_is_active_without_db_state():
    state = kill_switch_state()
    assert (state.active, state.source) == (True, "flag")


def test_kill_switch_needs_a_reason(operator):
    with pytest.raises(SafetyActionError):
        kill_switch_set(engaged=True, actor=operator, reason="  ")
    assert SafetyEvent.objects.count() == 0
    assert SafetyState.objects.filter(kill_switch_engaged=True).count() == 0


def lane(**fields) -> LaneState:
    values = {"account_label": "paper", "market_open": True, "signal_lag_seconds": 10.0}
    values.update(fields)
    return LaneState.objects.create(**values)


@override_settings(
    TRADING_EMERGENCY_STOP_ENABLED=True,
    TRADING_EMERGENCY_STOP_RECOVERY_CYCLES=3,
    TRADING_ROLLBACK_SIGNAL_LAG_SECONDS_LIMIT=600,
)
def test_emergency_stop_latches_writes_incident_and_auto_recovers(tmp_path, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    storages._storages = {}  # type: ignore[attr-defined]
    state = lane(signal_lag_seconds=900.0)
    verdict = emergency_stop_evaluate(lane=state, snapshot={"x": 1})
    assert (verdict.triggered, verdict.reasons) == (True, ["signal_lag_exceeded:900s"])
    safety = SafetyState.objects.get(scope="global")
    assert safety.emergency_stop_active is True
    incident = Incident.objects.get()
    body = json.loads((tmp_path / incident.artifact_path).read_text())
    assert body["reasons"] == ["signal_lag_exceeded:900s"]
    assert body["safety_snapshot"]["lane"] == "paper"
    state.signal_lag_seconds = 5.0
    results = [emergency_stop_evaluate(lane=state, snapshot={}) for _ in range(3)]
    assert [(r.active, r.recovered) for r in results] == [
        (True, False),
        (True, False),
        (False, True),
    ]
    assert SafetyState.objects.get(scope="global").emergency_stop_active is False
    assert list(SafetyEvent.objects.order_by("pk").values_list("kind", flat=True)) == [
        "emergency_stop_triggered",
        "emergency_stop_recovered",
    ]
    storages._storages = {}  # type: ignore[attr-defined]


@override_settings(TRADING_EMERGENCY_STOP_ENABLED=True)
def test_universe_outage_latch_is_not_auto_recoverable(operator):
    state = lane(universe_status="unavailable")
    assert emergency_stop_evaluate(lane=state, snapshot={}).reasons == [
        "universe_source_unavailable"
    ]
    state.universe_status = "ok"
    for _ in range(5):
        assert emergency_stop_evaluate(lane=state, snapshot={}).active is True
    with pytest.raises(SafetyActionError):
        emergency_stop_clear(actor=operator, reason="")
    emergency_stop_clear(actor=operator, reason="jangar back, checked the book")
    assert SafetyState.objects.get(scope="global").emergency_stop_active is False
    assert SafetyEvent.objects.filter(kind="emergency_stop_cleared", actor_label="op").count() == 1


@override_settings(
    TRADING_EMERGENCY_STOP_ENABLED=True, TRADING_ROLLBACK_SIGNAL_STALENESS_ALERT_STREAK_LIMIT=3
)
def test_staleness_streak_suppressed_when_market_closed():
    closed = lane(market_open=False, no_signal_reason="no_signals_in_window", no_signal_streak=5)
    assert emergency_stop_evaluate(lane=closed, snapshot={}).triggered is False
    closed.market_open = True
    assert emergency_stop_evaluate(lane=closed, snapshot={}).reasons == [
        "signal_staleness_streak:no_signals_in_window"
    ]


@override_settings(TRADING_EMERGENCY_STOP_ENABLED=False)
def test_disabled_emergency_stop_never_latches():
    assert (
        emergency_stop_evaluate(lane=lane(signal_lag_seconds=10_000.0), snapshot={}).triggered
        is False
    )
    assert SafetyState.objects.filter(emergency_stop_active=True).count() == 0


def test_the_high_water_mark_only_rises_and_a_session_starts_once_a_us_eastern_day():
    LaneState.objects.create(account_label="paper")
    day1 = datetime(2026, 3, 3, 14, 31, tzinfo=UTC)  # 09:31 in New York
    seen = [
        lane_equity_track(account_label="paper", equity=Decimal(e), now=day1 + timedelta(hours=h))
        for e, h in (("1000", 0), ("1200", 1), ("1100", 2), ("900", 9))  # the last: 04:31 UTC
    ]
    assert [(m.high_water_mark, m.session_day, m.session_start_equity) for m in seen] == [
        (Decimal(1000), date(2026, 3, 3), Decimal(1000)),
        (Decimal(1200), date(2026, 3, 3), Decimal(1000)),
        (Decimal(1200), date(2026, 3, 3), Decimal(1000)),
        (Decimal(1200), date(2026, 3, 3), Decimal(1000)),  # 23:31 in New York: the same day
    ]
    assert (seen[2].drawdown, seen[3].daily_loss) == (Decimal(100) / 1200, Decimal("0.1"))
    # 00:00 in New York: a new session starts from the equity it finds
    nextday = lane_equity_track(
        account_label="paper", equity=Decimal(950), now=datetime(2026, 3, 4, 5, 0, tzinfo=UTC)
    )
    assert (nextday.session_day, nextday.session_start_equity, nextday.daily_loss) == (
        date(2026, 3, 4),
        Decimal(950),
        Decimal(0),
    )
    # a worker still on the old day moves no session mark back
    late = lane_equity_track(account_label="paper", equity=Decimal(940), now=day1)
    assert (late.session_day, late.session_start_equity) == (date(2026, 3, 4), Decimal(950))


@override_settings(TRADING_EMERGENCY_STOP_ENABLED=True, TRADING_EMERGENCY_STOP_RECOVERY_CYCLES=1)
def test_a_loss_limit_joining_a_recoverable_latch_stops_its_auto_recovery():
    state = lane(signal_lag_seconds=900.0)
    assert emergency_stop_evaluate(lane=state, snapshot={}).triggered is True
    joined = emergency_stop_latch(
        reasons=["max_drawdown_exceeded"],
        account_label="paper",
        snapshot={},
        cancel_all_lanes=False,
    )
    assert (joined.triggered, joined.reasons) == (
        True,
        ["signal_lag_exceeded:900s", "max_drawdown_exceeded"],
    )
    assert Incident.objects.count() == 2
    # the same code again adds nothing
    again = emergency_stop_latch(
        reasons=["max_drawdown_exceeded"],
        account_label="paper",
        snapshot={},
        cancel_all_lanes=False,
    )
    assert (again.triggered, Incident.objects.count()) == (False, 2)
    state.signal_lag_seconds = 5.0
    for _ in range(3):
        assert emergency_stop_evaluate(lane=state, snapshot={}).active is True
    assert SafetyEvent.objects.filter(kind="emergency_stop_recovered").count() == 0


@override_settings(TRADING_EMERGENCY_STOP_ENABLED=True)
def test_a_new_session_day_latches_its_own_daily_loss(operator):
    emergency_stop_latch(
        reasons=["daily_loss_limit_exceeded:2026-03-03"], account_label="paper", snapshot={}
    )
    emergency_stop_latch(
        reasons=["daily_loss_limit_exceeded:2026-03-04"], account_label="paper", snapshot={}
    )
    assert SafetyState.objects.get(scope="global").emergency_stop_reasons == [
        "daily_loss_limit_exceeded:2026-03-03",
        "daily_loss_limit_exceeded:2026-03-04",
    ]
    with time_machine.travel(datetime(2026, 3, 4, 15, 0, tzinfo=UTC), tick=False):
        with pytest.raises(DailyLossLockedError):
            emergency_stop_clear(actor=operator, reason="checked")
    assert SafetyState.objects.get(scope="global").emergency_stop_active is True
