import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from trading.signals.types import (
    SignalCursor,
    parse_rows,
    parse_signal_row,
    parse_timestamp,
    row_key,
    timeframe_from_window,
)

T0 = datetime(2026, 3, 3, 14, 31, tzinfo=UTC)

FLAT = {
    "event_ts": "2026-03-03T14:31:00Z",
    "symbol": "AAPL",
    "seq": "7",
    "timeframe": "1Min",
    "price": "230.71",
    "macd": "-0.049714",
    "macd_signal": "-0.358677",
    "macd_hist": "0.308964",
    "rsi14": "62.5808",
    "ema12": "229.967915",
    "ema26": "",
    "spread": "0.02",
}


def test_flat_row():
    signal = parse_signal_row(FLAT, source="replay")
    assert signal is not None
    assert signal.event_ts == T0
    assert (signal.symbol, signal.seq, signal.timeframe, signal.source) == (
        "AAPL",
        7,
        "1Min",
        "replay",
    )
    assert signal.price == Decimal("230.71")
    assert dict(signal.features) == {
        "macd": -0.049714,
        "macd_signal": -0.358677,
        "macd_hist": 0.308964,
        "rsi14": 62.5808,
        "ema12": 229.967915,
        "spread": 0.02,
    }
    assert signal.ingest_ts is None
    assert signal.feature_schema_version == "3.0.0"
    assert signal.cursor == SignalCursor(T0, "AAPL", 7)


def test_flat_legacy_column_names_and_clickhouse_time_format():
    row = {
        "ts": "2026-03-03 14:31:00.250",
        "symbol": "MSFT",
        "close": 412.5,
        "macd": 0.1,
        "signal": 0.05,
        "rsi": 40,
        "ema": 410.0,
        "vwap": 411.0,
        "imbalance_spread": 0.03,
        "window_size": "PT1S",
    }
    signal = parse_signal_row(row, source="clickhouse")
    assert signal is not None
    assert signal.event_ts == T0 + timedelta(milliseconds=250)
    assert signal.seq == 0
    assert signal.timeframe == "1Sec"
    assert signal.price == Decimal("412.5")
    assert dict(signal.features) == {
        "macd": 0.1,
        "macd_signal": 0.05,
        "rsi14": 40.0,
        "ema12": 410.0,
        "vwap_session": 411.0,
        "spread": 0.03,
    }


def test_envelope_row_with_nested_payload_json():
    payload = {
        "macd": {"macd": 1.2, "signal": 0.5, "hist": 0.7},
        "ema": {"ema12": 101.0, "ema26": 100.5},
        "rsi14": 20,
        "boll": {"mid": 100.0, "upper": 102.0, "lower": 98.0},
        "vwap": {"session": 100.2, "w5m": 100.1},
        "vol_realized": {"w60s": 0.004},
        "imbalance": {"spread": 0.02, "bid_px": 99.99, "ask_px": 100.01},
        "price": "100.00",
    }
    row = {
        "event_ts": "2026-01-01 00:01:00.000",
        "ingest_ts": "2026-01-01 00:01:02.500",
        "symbol": "AAPL",
        "seq": 12,
        "payload": json.dumps(payload),
        "window_size": "PT1M",
        "window_step": "PT1M",
        "source": "ta",
    }
    signal = parse_signal_row(row, source="clickhouse")
    assert signal is not None
    assert signal.source == "ta"
    assert signal.timeframe == "1Min"
    assert signal.ingest_ts == datetime(2026, 1, 1, 0, 1, 2, 500000, tzinfo=UTC)
    assert signal.price == Decimal("100.00")
    assert dict(signal.features) == {
        "macd": 1.2,
        "macd_signal": 0.5,
        "macd_hist": 0.7,
        "rsi14": 20.0,
        "ema12": 101.0,
        "ema26": 100.5,
        "vwap_session": 100.2,
        "vwap_w5m": 100.1,
        "boll_mid": 100.0,
        "boll_upper": 102.0,
        "boll_lower": 98.0,
        "vol_realized_w60s": 0.004,
        "spread": 0.02,
        "imbalance_bid_px": 99.99,
        "imbalance_ask_px": 100.01,
    }


def test_envelope_payload_with_flat_keys_and_close():
    row = {
        "event_ts": T0.isoformat(),
        "symbol": "NVDA",
        "seq": 31,
        "payload": {"macd": 0.044, "macd_signal": 0.018, "rsi14": 64, "close": 969.4},
    }
    signal = parse_signal_row(row)
    assert signal is not None
    assert signal.price == Decimal("969.4")
    assert dict(signal.features) == {"macd": 0.044, "macd_signal": 0.018, "rsi14": 64.0}


@pytest.mark.parametrize(
    "change",
    [
        {"price": ""},  # price missing
        {"macd": None},
        {"macd_signal": ""},
        {"rsi14": ""},
        {"macd": "nan"},  # non-finite required
        {"ema12": "inf"},  # non-finite optional
        {"price": "NaN"},
        {"rsi14": "abc"},
        {"rsi14": True},
        {"event_ts": "yesterday"},
        {"symbol": ""},
        {"seq": "1.5"},
    ],
)
def test_invalid_rows_are_none(change):
    assert parse_signal_row({**FLAT, **change}) is None


def test_invalid_payload_json_is_none():
    row = {"event_ts": T0.isoformat(), "symbol": "AAPL", "payload": "{not json"}
    assert parse_signal_row(row) is None


def test_parse_rows_counts_invalid_and_tracks_last_position():
    rows: list[dict[str, Any]] = [
        FLAT,
        {**FLAT, "seq": "8", "rsi14": ""},
        {**FLAT, "seq": "9", "symbol": "MSFT"},
        {"garbage": 1},
    ]
    parsed = parse_rows(rows, source="x")
    assert [(s.symbol, s.seq) for s in parsed.signals] == [("AAPL", 7), ("MSFT", 9)]
    assert parsed.invalid_rows == 2
    assert parsed.last_key == SignalCursor(T0, "MSFT", 9)


def test_parse_timestamp_forms():
    assert parse_timestamp("2026-03-03T09:31:00-05:00") == T0
    assert parse_timestamp("2026-03-03T14:31:00") == T0
    assert parse_timestamp(T0.timestamp()) == T0
    assert parse_timestamp(datetime(2026, 3, 3, 9, 31, tzinfo=timezone(timedelta(hours=-5)))) == T0
    assert parse_timestamp(datetime(2026, 3, 3, 14, 31)) == T0
    assert parse_timestamp("") is None
    assert parse_timestamp(None) is None
    assert parse_timestamp(float("nan")) is None
    assert parse_timestamp(True) is None


def test_timeframe_from_window():
    assert timeframe_from_window("PT1M") == "1Min"
    assert timeframe_from_window("PT5M") == "5Min"
    assert timeframe_from_window("PT1S") == "1Sec"
    assert timeframe_from_window("PT1H") == "1Hour"
    assert timeframe_from_window("P1D") == "1Day"
    assert timeframe_from_window("1 minute") is None
    assert timeframe_from_window(None) is None


def test_cursor_order_is_the_stream_predicate():
    c = SignalCursor(T0, "MSFT", 5)
    later = T0 + timedelta(microseconds=1)
    assert SignalCursor(later, "AAPL", 0) > c  # event_ts > c
    assert SignalCursor(T0, "NVDA", 0) > c  # same time, symbol > s
    assert SignalCursor(T0, "MSFT", 6) > c  # same time and symbol, seq > n
    assert not SignalCursor(T0, "MSFT", 5) > c
    assert not SignalCursor(T0, "AAPL", 99) > c
    assert not SignalCursor(T0 - timedelta(microseconds=1), "ZZZ", 99) > c
    assert SignalCursor(T0, "AAPL", 0) > SignalCursor.at(T0)
    assert SignalCursor.after_time(T0) > SignalCursor(T0, "ZZZZ", 10**12)
    assert row_key({"ts": T0, "symbol": "SPY"}) == SignalCursor(T0, "SPY", 0)


def test_bar_volume_is_a_feature_of_flat_and_envelope_rows():
    flat = parse_signal_row({**FLAT, "volume": "95650"})
    assert flat is not None and flat.features["volume"] == 95650.0
    assert list(flat.features)[-1] == "volume"
    envelope = parse_signal_row(
        {
            "event_ts": "2026-03-03T14:31:00Z",
            "symbol": "AAPL",
            "payload": {"macd": {"macd": 1, "signal": 0}, "rsi14": 50, "price": 1, "volume": 12},
        }
    )
    assert envelope is not None and envelope.features["volume"] == 12.0
    without = parse_signal_row(FLAT)
    assert without is not None and "volume" not in without.features
