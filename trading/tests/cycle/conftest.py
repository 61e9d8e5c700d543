from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import use_replay_trading
from trading.models import Strategy

SIGNAL_HEADER = "event_ts,symbol,seq,timeframe,price,macd,macd_signal,macd_hist,rsi14,spread\n"


def write_signals(path: Path, rows: list[tuple[str, str, int, str, str, str, str]]) -> Path:
    """rows: (event_ts, symbol, seq, price, macd, macd_signal, rsi14)"""
    lines = [SIGNAL_HEADER]
    for ts, symbol, seq, price, macd, signal, rsi in rows:
        hist = f"{float(macd) - float(signal):.6f}"
        lines.append(f"{ts},{symbol},{seq},1Min,{price},{macd},{signal},{hist},{rsi},0.02\n")
    path.write_text("".join(lines))
    return path


@pytest.fixture
def signals_file(tmp_path):
    # two buys (MACD above signal, RSI < 35) and one sell, one minute apart
    return write_signals(
        tmp_path / "signals.csv",
        [
            ("2026-03-03T14:31:00Z", "AAPL", 1, "100.00", "1.2", "0.5", "20"),
            ("2026-03-03T14:32:00Z", "MSFT", 2, "50.00", "0.8", "0.1", "30"),
            ("2026-03-03T14:33:00Z", "AAPL", 3, "101.00", "-0.2", "0.1", "75"),
        ],
    )


@pytest.fixture
def replay_settings(settings, signals_file):
    return use_replay_trading(settings, signals_file)


@pytest.fixture
def macd_strategy(db):
    return Strategy.objects.create(
        name="macd",
        strategy_type="legacy_macd_rsi",
        enabled=True,
        base_timeframe="1Min",
        max_notional_per_trade=Decimal(1000),
        params={"buy_rsi_threshold": 35, "sell_rsi_threshold": 65},
    )


REPLAY_START = datetime(2026, 3, 3, 14, 31, tzinfo=UTC)
