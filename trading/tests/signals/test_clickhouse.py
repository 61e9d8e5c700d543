"""ClickHouseSignalSource against the real ClickHouse engine (chdb) behind its HTTP interface."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.servers.base import Fault
from trading.signals.base import CursorRules
from trading.signals.clickhouse import (
    ClickHouseError,
    ClickHouseSignalSource,
    cursor_predicate,
    datetime64_literal,
    quote_string,
)
from trading.signals.types import SignalCursor

NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)


def ts_text(dt):
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def insert(ch, table, rows):
    body = "\n".join(json.dumps(r) for r in rows)
    ch.execute(f"INSERT INTO {ch.database}.{table} FORMAT JSONEachRow {body}")


def source(ch, table="ta_signals", **kwargs):
    kwargs.setdefault("username", "torghut")
    kwargs.setdefault("password", "s3cret")
    return ClickHouseSignalSource(url=ch.url, table=f"{ch.database}.{table}", **kwargs)


def envelope_table(ch):
    ch.execute(
        f"CREATE TABLE {ch.database}.ta_signals (event_ts DateTime64(3, 'UTC'), "
        "ingest_ts DateTime64(3, 'UTC'), symbol String, seq UInt64, payload String, "
        "window_size String, window_step String, source String) "
        "ENGINE = MergeTree ORDER BY (event_ts, symbol, seq)"
    )


def envelope_row(ts, symbol, seq, *, macd=0.3, signal=0.1, rsi=30.0, price="101.25"):
    payload = {
        "macd": {"macd": macd, "signal": signal, "hist": macd - signal},
        "ema": {"ema12": 101.0, "ema26": 100.0},
        "rsi14": rsi,
        "vol_realized": {"w60s": 0.004},
        "price": price,
    }
    return {
        "event_ts": ts_text(ts),
        "ingest_ts": ts_text(ts + timedelta(seconds=2)),
        "symbol": symbol,
        "seq": seq,
        "payload": json.dumps(payload),
        "window_size": "PT1M",
        "window_step": "PT1M",
        "source": "ta",
    }


def select_queries(ch):
    return [
        q
        for q in ch.queries
        if q.startswith("SELECT") and "system.columns" not in q and "max(" not in q
    ]


def test_envelope_schema_end_to_end(ch):
    envelope_table(ch)
    t1 = NOW - timedelta(minutes=2)
    t2 = NOW - timedelta(minutes=1)
    insert(
        ch,
        "ta_signals",
        [
            envelope_row(NOW - timedelta(minutes=20), "AAPL", 1),  # before the lookback window
            envelope_row(t1, "MSFT", 4, rsi=70.0, macd=-0.2),
            envelope_row(t1, "AAPL", 9),
            envelope_row(t2, "AAPL", 10, price="101.30"),
        ],
    )
    batch = source(ch).fetch(None, limit=500, now=NOW)
    assert [(s.event_ts, s.symbol, s.seq) for s in batch.signals] == [
        (t1, "AAPL", 9),
        (t1, "MSFT", 4),
        (t2, "AAPL", 10),
    ]
    first = batch.signals[0]
    assert first.price == Decimal("101.25")
    assert first.timeframe == "1Min"
    assert first.source == "ta"
    assert first.ingest_ts == t1 + timedelta(seconds=2)
    assert dict(first.features) == {
        "macd": 0.3,
        "macd_signal": 0.1,
        "macd_hist": 0.19999999999999998,
        "rsi14": 30.0,
        "ema12": 101.0,
        "ema26": 100.0,
        "vol_realized_w60s": 0.004,
    }
    assert batch.cursor_after == SignalCursor(t2, "AAPL", 10)
    assert batch.latest_event_ts == t2
    assert batch.lag_seconds == 60.0
    assert batch.invalid_rows == 0

    start = "toDateTime64('2026-03-03 14:45:00.000000', 6, 'UTC')"
    assert select_queries(ch) == [
        "SELECT event_ts, ingest_ts, symbol, seq, payload, window_size, window_step, source "
        f"FROM {ch.database}.ta_signals WHERE (event_ts > {start} OR (event_ts = {start} AND "
        "(symbol > '' OR (symbol = '' AND seq > -1)))) ORDER BY event_ts, symbol, seq LIMIT 500 "
        "FORMAT JSONEachRow"
    ]
    request = ch.requests[-1]
    assert request.method == "GET"
    assert request.headers["x-clickhouse-user"] == "torghut"
    assert request.headers["x-clickhouse-key"] == "s3cret"

    tail = source(ch).fetch(batch.cursor_after, limit=500, now=NOW + timedelta(seconds=5))
    assert tail.signals == ()
    assert tail.no_signal_reason == "cursor_tail_stable"
    assert tail.cursor_after == batch.cursor_after


def test_strict_predicate_pages_ties_by_symbol_and_seq(ch):
    envelope_table(ch)
    t = NOW - timedelta(minutes=1)
    insert(
        ch,
        "ta_signals",
        [envelope_row(t, sym, seq) for sym in ("AAPL", "MSFT") for seq in (1, 2, 3)],
    )
    src = source(ch)
    cursor = SignalCursor(t, "AAPL", 2)
    seen = []
    for _ in range(3):
        batch = src.fetch(cursor, limit=2, now=NOW)
        seen.append([(s.symbol, s.seq) for s in batch.signals])
        cursor = batch.cursor_after
    assert seen == [[("AAPL", 3), ("MSFT", 1)], [("MSFT", 2), ("MSFT", 3)], []]


def test_flat_schema_with_seq_counts_invalid_rows(ch):
    ch.execute(
        f"CREATE TABLE {ch.database}.flat (event_ts DateTime64(3, 'UTC'), symbol String, "
        "seq UInt32, timeframe String, price Float64, macd Nullable(Float64), "
        "macd_signal Float64, rsi14 Nullable(Float64), ema12 Float64, spread Float64, "
        "unrelated String) ENGINE = MergeTree ORDER BY (event_ts, symbol, seq)"
    )
    t = NOW - timedelta(seconds=30)
    base = {
        "timeframe": "1Min",
        "price": 230.5,
        "macd_signal": 0.1,
        "ema12": 230.0,
        "spread": 0.02,
        "unrelated": "x",
    }
    insert(
        ch,
        "flat",
        [
            {
                **base,
                "event_ts": ts_text(t),
                "symbol": "AAPL",
                "seq": 1,
                "macd": 0.2,
                "rsi14": 31.5,
            },
            {
                **base,
                "event_ts": ts_text(t),
                "symbol": "AAPL",
                "seq": 2,
                "macd": 0.2,
                "rsi14": None,
            },
            {
                **base,
                "event_ts": ts_text(t),
                "symbol": "AAPL",
                "seq": 3,
                "macd": None,
                "rsi14": 40.0,
            },
        ],
    )
    ch.execute(
        f"INSERT INTO {ch.database}.flat VALUES ('{ts_text(t)}', 'AAPL', 4, '1Min', 230.5, nan, "
        "0.1, 40, 230, 0.02, 'x')"
    )
    batch = source(ch, table="flat").fetch(None, limit=500, now=NOW)
    assert [(s.symbol, s.seq, s.price, dict(s.features)) for s in batch.signals] == [
        (
            "AAPL",
            1,
            Decimal("230.5"),
            {"macd": 0.2, "macd_signal": 0.1, "rsi14": 31.5, "ema12": 230.0, "spread": 0.02},
        ),
    ]
    assert batch.invalid_rows == 3
    assert batch.cursor_after == SignalCursor(t, "AAPL", 4)
    assert "unrelated" not in select_queries(ch)[0]


def test_flat_ts_table_without_seq_rereads_two_second_overlap(ch):
    ch.execute(
        f"CREATE TABLE {ch.database}.legacy (ts DateTime64(3, 'UTC'), symbol String, "
        "close Float64, macd Float64, signal Float64, rsi Float64) "
        "ENGINE = MergeTree ORDER BY (ts, symbol)"
    )
    t = NOW - timedelta(seconds=10)
    rows = [
        {"ts": ts_text(t), "symbol": s, "close": 10.0, "macd": 0.2, "signal": 0.1, "rsi": 30.0}
        for s in ("AAPL", "MSFT")
    ]
    insert(ch, "legacy", rows)
    src = source(ch, table="legacy")
    first = src.fetch(None, limit=500, now=NOW)
    assert [(s.event_ts, s.symbol, s.seq) for s in first.signals] == [
        (t, "AAPL", 0),
        (t, "MSFT", 0),
    ]
    assert first.cursor_after == SignalCursor(t, "MSFT", 0)
    # a late row at the same time, and a new one
    insert(
        ch,
        "legacy",
        [{**rows[0], "symbol": "NVDA"}, {**rows[0], "ts": ts_text(t + timedelta(seconds=1))}],
    )
    second = src.fetch(first.cursor_after, limit=500, now=NOW + timedelta(seconds=1))
    assert [(s.event_ts, s.symbol) for s in second.signals] == [
        (t, "NVDA"),
        (t + timedelta(seconds=1), "AAPL"),
    ]
    overlap_from = datetime64_literal(t - timedelta(seconds=2))
    assert select_queries(ch)[-1] == (
        f"SELECT ts, symbol, close, macd, signal, rsi FROM {ch.database}.legacy "
        f"WHERE ts >= {overlap_from} ORDER BY ts, symbol LIMIT 500 FORMAT JSONEachRow"
    )
    third = src.fetch(second.cursor_after, limit=500, now=NOW + timedelta(seconds=2))
    assert third.signals == ()
    assert third.no_signal_reason == "cursor_tail_stable"


def test_flat_overlap_filling_the_page_falls_back_to_strict_query(ch):
    ch.execute(
        f"CREATE TABLE {ch.database}.legacy (ts DateTime64(3, 'UTC'), symbol String, "
        "close Float64, macd Float64, signal Float64, rsi Float64) "
        "ENGINE = MergeTree ORDER BY (ts, symbol)"
    )
    t = NOW - timedelta(seconds=10)
    insert(
        ch,
        "legacy",
        [
            {"ts": ts_text(t), "symbol": s, "close": 1.0, "macd": 1.0, "signal": 0.0, "rsi": 50.0}
            for s in ("A", "B", "C")
        ],
    )
    batch = source(ch, table="legacy").fetch(SignalCursor(t, "B", 0), limit=2, now=NOW)
    assert [s.symbol for s in batch.signals] == ["C"]
    assert "symbol > 'B'" in select_queries(ch)[-1]


def test_latest_is_cached_for_30_seconds_and_schema_detected_once(ch):
    envelope_table(ch)
    t = NOW - timedelta(minutes=1)
    insert(ch, "ta_signals", [envelope_row(t, "AAPL", 1)])
    src = source(ch)
    batch = src.fetch(None, limit=500, now=NOW)
    insert(ch, "ta_signals", [envelope_row(NOW + timedelta(seconds=5), "AAPL", 2)])
    cached = source(ch).fetch(batch.cursor_after, limit=500, now=NOW + timedelta(seconds=29))
    # the row itself is read; latest comes from the cache, then from the row
    assert [s.seq for s in cached.signals] == [2]
    refreshed = source(ch).fetch(cached.cursor_after, limit=500, now=NOW + timedelta(seconds=30))
    assert refreshed.no_signal_reason == "cursor_tail_stable"
    assert refreshed.latest_event_ts == NOW + timedelta(seconds=5)
    latest_queries = [q for q in ch.queries if "max(event_ts)" in q]
    assert (
        latest_queries
        == [
            f"SELECT count() AS n, max(event_ts) AS latest FROM {ch.database}.ta_signals "
            "FORMAT JSONEachRow"
        ]
        * 2
    )
    assert len([q for q in ch.queries if "system.columns" in q]) == 1


def test_empty_table_and_cursor_ahead(ch):
    envelope_table(ch)
    empty = source(ch).fetch(None, limit=500, now=NOW)
    assert empty.no_signal_reason == "empty_batch_advanced"
    assert empty.cursor_after == SignalCursor.at(NOW - timedelta(seconds=60))
    assert empty.latest_event_ts is None
    latest = NOW - timedelta(hours=1)
    insert(ch, "ta_signals", [envelope_row(latest, "AAPL", 1)])
    ahead = source(ch).fetch(
        SignalCursor.at(NOW - timedelta(minutes=1)), limit=500, now=NOW + timedelta(minutes=1)
    )
    assert ahead.no_signal_reason == "cursor_ahead_of_stream"
    assert ahead.cursor_after == SignalCursor.after_time(latest)
    assert ahead.lag_seconds == 3660.0
    after = source(ch).fetch(ahead.cursor_after, limit=500, now=NOW + timedelta(minutes=2))
    assert after.signals == ()
    assert after.no_signal_reason == "cursor_tail_stable"


def test_url_missing_makes_no_request(ch):
    batch = ClickHouseSignalSource(url="", table="torghut.ta_signals").fetch(
        None, limit=500, now=NOW
    )
    assert batch.no_signal_reason == "clickhouse_url_missing"
    assert batch.cursor_after is None
    assert batch.signals == ()
    assert ch.requests == []


def test_authentication_failure(ch):
    envelope_table(ch)
    with pytest.raises(ClickHouseError, match="Authentication failed") as info:
        source(ch, password="wrong").fetch(None, limit=500, now=NOW)
    assert (info.value.code, info.value.status) == (516, 401)


def test_server_errors_carry_the_clickhouse_code(ch):
    src = source(ch)
    with pytest.raises(ClickHouseError, match="Syntax error") as syntax:
        src.query("SELEC 1")
    assert (syntax.value.code, syntax.value.status) == (62, 400)
    with pytest.raises(ClickHouseError, match="UNKNOWN_TABLE") as unknown:
        src.query(f"SELECT * FROM {ch.database}.nope")
    assert (unknown.value.code, unknown.value.status) == (60, 404)
    with pytest.raises(ClickHouseError, match=f"table {ch.database}.nope not found"):
        source(ch, table="nope").fetch(None, limit=500, now=NOW)


def test_timeout_and_injected_500(ch):
    envelope_table(ch)
    ch.inject(Fault(method="GET", path_regex="/", delay=0.5, drop=True))
    with pytest.raises(ClickHouseError, match="ClickHouse request failed"):
        source(ch, timeout=0.2).fetch(None, limit=500, now=NOW)
    ch.inject(Fault(method="GET", path_regex="/", status=500, body={"message": "boom"}))
    with pytest.raises(ClickHouseError, match="ClickHouse HTTP 500") as info:
        source(ch).fetch(None, limit=500, now=NOW)
    assert info.value.status == 500


def test_invalid_table_name_is_rejected():
    with pytest.raises(ValueError, match="invalid ClickHouse table name"):
        ClickHouseSignalSource(url="http://x", table="t; DROP TABLE x")


def test_literals():
    assert quote_string("O'Neil\\") == "'O\\'Neil\\\\'"
    assert datetime64_literal(datetime(2026, 3, 3, 14, 45, 0, 1, tzinfo=UTC)) == (
        "toDateTime64('2026-03-03 14:45:00.000001', 6, 'UTC')"
    )
    assert cursor_predicate(SignalCursor(NOW, "AAPL", 7), time_column="ts", has_seq=False) == (
        "(ts > toDateTime64('2026-03-03 15:00:00.000000', 6, 'UTC') OR "
        "(ts = toDateTime64('2026-03-03 15:00:00.000000', 6, 'UTC') AND symbol > 'AAPL'))"
    )


def test_from_settings(settings):
    settings.TA_CLICKHOUSE_URL = "http://ch:8123"
    settings.TRADING_SIGNAL_TABLE = "torghut.ta_signals"
    settings.TA_CLICKHOUSE_USERNAME = "u"
    settings.TA_CLICKHOUSE_PASSWORD = "p"
    settings.TA_CLICKHOUSE_CONN_TIMEOUT_SECONDS = 3.5
    settings.TRADING_SIGNAL_SCHEMA = "flat"
    settings.TRADING_SIGNAL_LOOKBACK_MINUTES = 10
    settings.TRADING_SIGNAL_EMPTY_BATCH_ADVANCE_SECONDS = 30
    src = ClickHouseSignalSource.from_settings()
    assert (src.url, src.table, src.username, src.password, src.timeout, src.schema_mode) == (
        "http://ch:8123",
        "torghut.ta_signals",
        "u",
        "p",
        3.5,
        "flat",
    )
    assert src.rules == CursorRules(
        lookback=timedelta(minutes=10), empty_batch_advance=timedelta(seconds=30)
    )
