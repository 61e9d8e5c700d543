"""AlpacaBarsSignalSource with a small in-test bars provider (a real object with get_bars)."""

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from trading.indicators import compute_features
from trading.marketdata import Bar
from trading.signals.alpaca import AlpacaBarsSignalSource, signals_from_bars, timeframe_seconds
from trading.signals.base import CursorRules
from trading.signals.session import session_key
from trading.signals.types import SignalCursor

BARS_CSV = Path(__file__).resolve().parents[2] / "sample_data" / "bars-sample.csv"
OPEN = datetime(2026, 3, 3, 14, 30, tzinfo=UTC)


def load_bars():
    with BARS_CSV.open(encoding="utf-8") as fh:
        return [
            Bar(
                symbol=r["symbol"],
                timestamp=datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")),
                timeframe=r["timeframe"],
                open=Decimal(r["open"]),
                high=Decimal(r["high"]),
                low=Decimal(r["low"]),
                close=Decimal(r["close"]),
                volume=Decimal(r["volume"]),
                vwap=Decimal(r["vwap"]),
                trade_count=int(r["trade_count"]),
            )
            for r in csv.DictReader(fh)
        ]


class RecordedBars:
    """Serves recorded bars like the Alpaca bars endpoint: bars opening in [start, end]."""

    def __init__(self, bars):
        self.bars = bars
        self.calls = []

    def get_bars(self, symbols, start, end, timeframe):
        self.calls.append((tuple(symbols), start, end, timeframe))
        return [b for b in self.bars if b.symbol in symbols and start <= b.timestamp <= end]


@pytest.fixture(scope="module")
def bars():
    return load_bars()


def test_signals_are_completed_bars_with_locally_computed_indicators(bars):
    provider = RecordedBars(bars)
    source = AlpacaBarsSignalSource(provider, ["aapl", "MSFT"])
    now = OPEN + timedelta(minutes=30, seconds=20)
    batch = source.fetch(None, limit=500, now=now)
    assert provider.calls == [(("AAPL", "MSFT"), now - timedelta(minutes=15 + 180), now, "1Min")]
    # window starts at now - 15 min = 14:45:20; completed bars close at 14:46 .. 15:00
    assert len(batch.signals) == 2 * 15
    first, last = batch.signals[0], batch.signals[-1]
    assert (first.event_ts, first.symbol) == (OPEN + timedelta(minutes=16), "AAPL")
    assert (last.event_ts, last.symbol) == (OPEN + timedelta(minutes=30), "MSFT")
    assert last.seq == int((OPEN + timedelta(minutes=29)).timestamp())
    assert batch.cursor_after == last.cursor
    assert batch.latest_event_ts == OPEN + timedelta(minutes=30)
    assert batch.lag_seconds == 20.0
    assert batch.invalid_rows == 0
    assert first.source == "alpaca" and first.timeframe == "1Min"

    # the features equal the vectorized indicators over the same bars the provider returned
    aapl = [
        b for b in bars if b.symbol == "AAPL" and now - timedelta(minutes=195) <= b.timestamp <= now
    ]
    close = np.array([float(b.close) for b in aapl])
    features = compute_features(
        close,
        volume=np.array([float(b.volume) for b in aapl]),
        session=np.array([session_key(b.timestamp) for b in aapl]),
    )
    index = next(
        i for i, b in enumerate(aapl) if b.timestamp + timedelta(minutes=1) == first.event_ts
    )
    assert first.price == aapl[index].close
    # the provider has 16 bars up to this one (the session opened at 14:30): no Bollinger yet
    assert index == 15
    assert set(first.features) == {
        "macd",
        "macd_signal",
        "macd_hist",
        "rsi14",
        "ema12",
        "ema26",
        "vwap_session",
        "vwap_w5m",
        "vol_realized_w60s",
        "volume",
    }
    assert first.features["volume"] == float(aapl[index].volume)  # the bar's own volume
    assert "boll_mid" in batch.signals[2 * 4].features  # the 20th bar has it
    for key, value in first.features.items():
        if key != "volume":
            assert value == features[key][index], key


def test_forming_bar_is_not_released_and_next_fetch_continues(bars):
    source = AlpacaBarsSignalSource(RecordedBars(bars), ["SPY"])
    now = OPEN + timedelta(minutes=30, seconds=59)
    batch = source.fetch(None, limit=500, now=now)
    assert batch.signals[-1].event_ts == OPEN + timedelta(minutes=30)  # 15:00 bar still forming
    again = AlpacaBarsSignalSource(RecordedBars(bars), ["SPY"]).fetch(
        batch.cursor_after, limit=500, now=OPEN + timedelta(minutes=31)
    )
    assert [(s.event_ts, s.symbol) for s in again.signals] == [
        (OPEN + timedelta(minutes=31), "SPY")
    ]
    tail = AlpacaBarsSignalSource(RecordedBars(bars), ["SPY"]).fetch(
        again.cursor_after, limit=500, now=OPEN + timedelta(minutes=31, seconds=30)
    )
    assert tail.signals == ()
    assert tail.no_signal_reason == "cursor_tail_stable"


def test_short_warmup_rows_are_invalid(bars):
    source = AlpacaBarsSignalSource(
        RecordedBars(bars),
        ["TSLA"],
        warmup_minutes=0,
        rules=CursorRules.from_values(lookback_minutes=20),
    )
    batch = source.fetch(None, limit=500, now=OPEN + timedelta(hours=1))
    # 21 bars open in [now - 20 min, now]; 20 have closed; the first 14 have no RSI14 yet
    assert batch.invalid_rows == 14
    assert len(batch.signals) == 6
    assert batch.cursor_after == batch.signals[-1].cursor


def test_limit_counts_invalid_rows(bars):
    source = AlpacaBarsSignalSource(
        RecordedBars(bars),
        ["TSLA"],
        warmup_minutes=0,
        rules=CursorRules.from_values(lookback_minutes=20),
    )
    batch = source.fetch(None, limit=3, now=OPEN + timedelta(hours=1))
    assert (len(batch.signals), batch.invalid_rows) == (0, 3)
    assert batch.cursor_after == SignalCursor(
        OPEN + timedelta(minutes=43), "TSLA", int((OPEN + timedelta(minutes=42)).timestamp())
    )


def test_no_symbols_and_market_closed(bars):
    empty = AlpacaBarsSignalSource(RecordedBars(bars), []).fetch(None, limit=10, now=OPEN)
    assert empty.no_signal_reason == "empty_batch_advanced"
    provider = RecordedBars(bars)
    weekend = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)
    closed = AlpacaBarsSignalSource(provider, ["AAPL"]).fetch(None, limit=10, now=weekend)
    assert closed.signals == ()
    assert closed.latest_event_ts is None
    assert closed.no_signal_reason == "empty_batch_advanced"


def test_duplicate_bars_keep_the_last_copy(bars):
    aapl = [b for b in bars if b.symbol == "AAPL"][:40]
    revised = Bar(**{**aapl[-1].__dict__, "close": aapl[-1].close + Decimal("1.00")})
    rows = signals_from_bars([*aapl, revised], timeframe="1Min")
    assert len(rows) == 40
    last = rows[-1][1]
    assert last is not None
    assert last.price == aapl[-1].close + Decimal("1.00")


def test_timeframes():
    assert timeframe_seconds("1Min") == 60
    assert timeframe_seconds("5Min") == 300
    assert timeframe_seconds("1Hour") == 3600
    assert timeframe_seconds("1Day") == 86400
    with pytest.raises(ValueError, match="unsupported timeframe '1m'"):
        timeframe_seconds("1m")


def test_from_settings_with_given_market_data(settings, bars):
    settings.TRADING_STATIC_SYMBOLS = ["AAPL", "NVDA"]
    settings.TRADING_SIGNAL_LOOKBACK_MINUTES = 15
    settings.TRADING_SIGNAL_EMPTY_BATCH_ADVANCE_SECONDS = 60
    provider = RecordedBars(bars)
    source = AlpacaBarsSignalSource.from_settings(provider)
    assert source.market_data is provider
    assert source.symbols == ("AAPL", "NVDA")
