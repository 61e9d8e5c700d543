"""TRADING_ALLOCATOR_ENABLED is read from Flipt every cycle: a flip changes the next cycle."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.conftest import flag, use_replay_trading
from trading.gates import RiskLimits
from trading.models import Strategy, TradeCursor, TradeDecision
from trading.services.cycle import trading_cycle_run
from trading.tests.cycle.conftest import REPLAY_START, write_signals

pytestmark = pytest.mark.django_db


def test_a_flip_of_the_allocator_flag_in_flipt_changes_the_next_cycle(flipt, settings, tmp_path):
    Strategy.objects.create(
        name="macd",
        strategy_type="legacy_macd_rsi",
        enabled=True,
        max_notional_per_trade=Decimal(1000),
        params={"buy_rsi_threshold": 35, "sell_rsi_threshold": 65},
    )
    signals = write_signals(
        tmp_path / "signals.csv",
        [
            ("2026-03-03T14:31:00Z", "AAPL", 1, "100.00", "1.2", "0.5", "20"),
            ("2026-03-03T14:32:00Z", "MSFT", 2, "50.00", "0.8", "0.1", "30"),
        ],
    )
    use_replay_trading(settings, signals)
    settings.TRADING_FEATURE_FLAGS_ENABLED = True  # the flipt fixture's server answers
    settings.TRADING_ALLOCATOR_ENABLED = False  # the env value the flag overrides
    settings.TRADING_ALLOCATOR_SYMBOL_NOTIONAL_CAPS = {"AAPL": Decimal(500), "MSFT": Decimal(300)}
    TradeCursor.objects.create(
        source="replay", account_label="paper", state={"anchor": REPLAY_START.isoformat()}
    )
    flipt.set_flags(flag("torghut_trading_allocator_enabled", False))
    trading_cycle_run(account_label="paper", now=REPLAY_START + timedelta(seconds=30))
    assert TradeDecision.objects.get(symbol="AAPL").qty == Decimal(10)  # 1000 / 100, no cap

    flipt.set_flags(flag("torghut_trading_allocator_enabled", True))
    assert RiskLimits.from_settings(kill_switch=False).allocator_enabled is True
    trading_cycle_run(account_label="paper", now=REPLAY_START + timedelta(seconds=90))
    msft = TradeDecision.objects.get(symbol="MSFT")
    assert (msft.status, msft.qty) == ("submitted", Decimal(6))  # the 300 cap / 50
