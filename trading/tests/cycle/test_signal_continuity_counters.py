"""The original's signal-continuity counters, counted where a cycle reads no signal
(docs/compatibility.md#metrics)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from tests.conftest import use_replay_trading
from trading.lanes import lane_config
from trading.models import LaneState
from trading.services.cycle import _count_staleness, trading_cycle_run
from trading.tests.cycle.conftest import REPLAY_START, write_signals

pytestmark = pytest.mark.django_db


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _read(account: str, reason: str) -> tuple[float, float, float, float]:
    return (
        _value("torghut_trading_no_signal_windows_total", account=account),
        _value("torghut_trading_signal_expected_staleness_total", account=account, reason=reason),
        _value("torghut_trading_signal_actionable_staleness_total", account=account, reason=reason),
        _value("torghut_trading_signal_staleness_alert_total", account=account, reason=reason),
    )


def test_cycles_without_signals_count_windows_and_one_alert_per_streak(settings, tmp_path):
    use_replay_trading(settings, write_signals(tmp_path / "empty.csv", []))
    settings.TRADING_SIGNAL_NO_SIGNAL_STREAK_ALERT_THRESHOLD = 2
    trading_cycle_run(account_label="paper", now=REPLAY_START)
    reason = LaneState.objects.get(account_label="paper").no_signal_reason
    assert reason  # the replay source names why it read nothing
    before = _read("paper", reason)
    for n in range(1, 4):
        trading_cycle_run(account_label="paper", now=REPLAY_START + timedelta(seconds=5 * n))
    after = _read("paper", reason)
    # the simulated broker's market is always open: every window is actionable, and the
    # streak crosses the threshold once (at 2; the first cycle was 1)
    assert tuple(a - b for a, b in zip(after, before, strict=True)) == (3.0, 0.0, 3.0, 1.0)


def test_a_closed_market_with_an_expected_reason_is_expected_not_actionable(settings):
    settings.TRADING_SIGNAL_MARKET_CLOSED_EXPECTED_REASONS = ["cursor_tail_stable"]
    settings.TRADING_SIGNAL_NO_SIGNAL_STREAK_ALERT_THRESHOLD = 1
    lane = lane_config("paper")
    label = lane.label
    before = _read(label, "cursor_tail_stable"), _read(label, "no_signals_in_window")
    _count_staleness(lane=lane, reason="cursor_tail_stable", streak=1, market_open=False)
    _count_staleness(lane=lane, reason="cursor_tail_stable", streak=1, market_open=True)
    _count_staleness(lane=lane, reason="no_signals_in_window", streak=1, market_open=False)
    after = _read(label, "cursor_tail_stable"), _read(label, "no_signals_in_window")
    diffs = [
        tuple(a - b for a, b in zip(x, y, strict=True)) for x, y in zip(after, before, strict=True)
    ]
    # windows count every call (3) on both reads of the unlabelled-by-reason series
    assert diffs == [(3.0, 1.0, 1.0, 1.0), (3.0, 0.0, 1.0, 1.0)]
