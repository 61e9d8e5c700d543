"""Trading-cycle, signal-quality, safety, catalog and lane settings: each one, set to two values,
changes what the cycle, the feature-quality check, the emergency-stop triggers, the catalog
reload, the order-feed parser or the lanes do."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from orderfeed.services import batch_parse
from torghut_site.kafka.messages import RawMessage
from trading.models import LaneState, Strategy, TradeCursor
from trading.services.cycle import feature_quality_reasons, trading_cycle_run
from trading.services.safety import emergency_stop_reasons
from trading.signals.types import SignalEnvelope
from trading.tests.cycle.conftest import REPLAY_START

NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
FULL = {"macd": 1.0, "macd_signal": 0.5, "rsi14": 40.0}


def _signal(seq: int, *, features=FULL, age_ms: int = 0, symbol: str = "AAPL") -> SignalEnvelope:
    event_ts = NOW - timedelta(seconds=60 - seq)
    return SignalEnvelope(
        event_ts=event_ts,
        symbol=symbol,
        seq=seq,
        timeframe="1Min",
        source="replay",
        price=Decimal(100),
        features=dict(features),
        ingest_ts=event_ts + timedelta(milliseconds=age_ms),
    )


@pytest.mark.parametrize(
    ("setting", "strict", "lenient", "signals", "reason"),
    [
        # one of four signals lacks rsi14: a null rate of 0.25
        ("TRADING_FEATURE_MAX_REQUIRED_NULL_RATE", 0.2, 0.25,
         [_signal(1), _signal(2), _signal(3), _signal(4, features={"macd": 1, "macd_signal": 0})],
         "null_rate_exceeded:rsi14"),
        ("TRADING_FEATURE_MAX_STALENESS_MS", 4999, 5000, [_signal(1, age_ms=5000)],
         "staleness_p95_exceeded"),
        # one of four is a duplicate (same event_ts, symbol, seq): 0.25
        ("TRADING_FEATURE_MAX_DUPLICATE_RATIO", 0.2, 0.25,
         [_signal(1), _signal(2), _signal(2), _signal(3)], "duplicate_ratio_exceeded"),
    ],
)  # fmt: skip
def test_each_feature_quality_limit_yields_its_reason(
    settings, setting, strict, lenient, signals, reason
):
    settings.TRADING_FEATURE_MAX_STALENESS_MS = 120_000
    setattr(settings, setting, strict)
    assert feature_quality_reasons(signals, now=NOW) == [reason]
    setattr(settings, setting, lenient)
    assert feature_quality_reasons(signals, now=NOW) == []


def _lane(reason: str, *, market_open: bool | None) -> LaneState:
    return LaneState(
        account_label="paper", no_signal_reason=reason, no_signal_streak=5, market_open=market_open
    )


def test_staleness_critical_reasons_decide_which_reason_trips_the_stop(settings):
    settings.TRADING_ROLLBACK_SIGNAL_STALENESS_ALERT_STREAK_LIMIT = 3
    lane = _lane("cursor_tail_stable", market_open=True)
    settings.TRADING_SIGNAL_STALENESS_ALERT_CRITICAL_REASONS = ["no_signals_in_window"]
    assert emergency_stop_reasons(lane=lane) == []
    settings.TRADING_SIGNAL_STALENESS_ALERT_CRITICAL_REASONS = ["cursor_tail_stable"]
    assert emergency_stop_reasons(lane=lane) == ["signal_staleness_streak:cursor_tail_stable"]


def test_market_closed_expected_reasons_are_not_alerts_while_closed(settings):
    settings.TRADING_ROLLBACK_SIGNAL_STALENESS_ALERT_STREAK_LIMIT = 3
    settings.TRADING_SIGNAL_STALENESS_ALERT_CRITICAL_REASONS = ["no_signals_in_window"]
    closed = _lane("no_signals_in_window", market_open=False)
    settings.TRADING_SIGNAL_MARKET_CLOSED_EXPECTED_REASONS = ["no_signals_in_window"]
    assert emergency_stop_reasons(lane=closed) == []
    settings.TRADING_SIGNAL_MARKET_CLOSED_EXPECTED_REASONS = ["cursor_tail_stable"]
    assert emergency_stop_reasons(lane=closed) == ["signal_staleness_streak:no_signals_in_window"]


@pytest.mark.django_db
@pytest.mark.parametrize(("batch_size", "signals"), [(1, 1), (2, 2)])
def test_signal_batch_size_bounds_what_one_cycle_reads(
    replay_settings, macd_strategy, batch_size, signals
):
    replay_settings.TRADING_SIGNAL_BATCH_SIZE = batch_size
    TradeCursor.objects.create(
        source="replay", account_label="paper", state={"anchor": REPLAY_START.isoformat()}
    )
    result = trading_cycle_run(account_label="paper", now=REPLAY_START + timedelta(minutes=10))
    assert result.signals == signals


CATALOG = """
strategies:
  - name: {name}
    strategy_type: legacy_macd_rsi
    enabled: true
    base_timeframe: 1Min
"""


@pytest.mark.django_db
def test_catalog_mode_and_reload_period_drive_the_cycle_reload(replay_settings, tmp_path):
    from trading.services import cycle

    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG.format(name="alpha"))
    replay_settings.TRADING_STRATEGY_CONFIG_PATH = str(path)
    replay_settings.TRADING_STRATEGY_CONFIG_MODE = "merge"
    replay_settings.TRADING_STRATEGY_RELOAD_SECONDS = 3600
    # last read more than the reload period ago
    cycle._catalog_checked[str(path)] = time.monotonic() - 3601
    cycle._maybe_reload_catalog()
    assert list(Strategy.objects.values_list("name", "enabled")) == [("alpha", True)]

    path.write_text(CATALOG.format(name="beta"))
    cycle._maybe_reload_catalog()  # within the reload period: the file is not read again
    assert Strategy.objects.filter(name="beta").exists() is False

    replay_settings.TRADING_STRATEGY_RELOAD_SECONDS = 1
    cycle._catalog_checked[str(path)] -= 2
    cycle._maybe_reload_catalog()  # merge: alpha stays enabled
    assert sorted(Strategy.objects.values_list("name", "enabled")) == [
        ("alpha", True),
        ("beta", True),
    ]

    path.write_text(CATALOG.format(name="gamma"))
    replay_settings.TRADING_STRATEGY_CONFIG_MODE = "sync"
    cycle._catalog_checked[str(path)] -= 2
    cycle._maybe_reload_catalog()  # sync: what the file no longer lists is disabled
    assert sorted(Strategy.objects.values_list("name", "enabled")) == [
        ("alpha", False),
        ("beta", False),
        ("gamma", True),
    ]
    cycle._catalog_checked.clear()


def test_account_label_is_the_order_feed_default_account(settings):
    body = {
        "event": "new",
        "timestamp": "2026-03-03T14:31:00Z",
        "order": {
            "id": "o-1",
            "client_order_id": "c-1",
            "symbol": "AAPL",
            "side": "buy",
            "type": "market",
            "qty": "1",
            "filled_qty": "0",
            "status": "new",
            "updated_at": "2026-03-03T14:31:00Z",
        },
    }
    message = RawMessage("feed", 0, 1, b"AAPL", json.dumps(body).encode(), 0)
    for label in ("paper", "paper-b"):
        settings.TRADING_ACCOUNT_LABEL = label
        parsed = batch_parse([message])
        assert [update.account_label for _, update in parsed.unique] == [label]


def test_broker_and_account_label_make_the_single_account_lane(monkeypatch, settings):
    from tests.foundation.test_settings_behaviour_site import settings_from_env
    from trading.lanes import broker_for_lane, lane_config

    settings.TRADING_LANES = settings_from_env(monkeypatch, {"TRADING_ACCOUNT_LABEL": "desk-1"})[
        "TRADING_LANES"
    ]
    assert broker_for_lane(lane_config("desk-1")).name == "simulated"
    env = {"TRADING_BROKER": "alpaca", "APCA_API_KEY_ID": "k", "APCA_API_SECRET_KEY": "s"}
    settings.APCA_API_KEY_ID, settings.APCA_API_SECRET_KEY = "k", "s"
    settings.TRADING_LANES = settings_from_env(monkeypatch, env)["TRADING_LANES"]
    assert broker_for_lane(lane_config("paper")).name == "alpaca"
