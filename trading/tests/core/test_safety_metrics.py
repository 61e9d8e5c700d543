"""/metrics shows the safety latches and the lanes' no-signal streaks as the database holds them."""

from __future__ import annotations

import pytest
from django.utils import timezone

from trading.models import LaneState, SafetyState

pytestmark = pytest.mark.django_db


def _samples(client) -> set[str]:
    text = client.get("/metrics").content.decode()
    return {
        line
        for line in text.splitlines()
        if line.startswith(
            (
                "torghut_trading_kill_switch_engaged",
                "torghut_trading_emergency_stop_active",
                "torghut_trading_no_signal_streak",
            )
        )
    }


def test_latches_off_and_no_lanes(client, settings):
    settings.TRADING_KILL_SWITCH_ENABLED = False
    assert _samples(client) == {
        'torghut_trading_kill_switch_engaged{source="manual"} 0.0',
        'torghut_trading_kill_switch_engaged{source="flag"} 0.0',
        "torghut_trading_emergency_stop_active 0.0",
    }


def test_engaged_latches_and_a_streak_are_exported(client, settings):
    settings.TRADING_KILL_SWITCH_ENABLED = False
    SafetyState.objects.create(
        scope="global",
        kill_switch_engaged=True,
        kill_switch_reason="test",
        emergency_stop_active=True,
        emergency_stop_triggered_at=timezone.now(),
    )
    LaneState.objects.create(account_label="paper", no_signal_streak=4)
    assert _samples(client) == {
        'torghut_trading_kill_switch_engaged{source="manual"} 1.0',
        'torghut_trading_kill_switch_engaged{source="flag"} 0.0',
        "torghut_trading_emergency_stop_active 1.0",
        'torghut_trading_no_signal_streak{lane="paper"} 4.0',
    }


def test_the_env_kill_switch_is_exported_as_flag(client, settings):
    settings.TRADING_KILL_SWITCH_ENABLED = True
    assert 'torghut_trading_kill_switch_engaged{source="flag"} 1.0' in _samples(client)
