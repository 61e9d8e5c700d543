"""The shared §2.3 cursor rules, through a small in-memory source (a real CursorSignalSource)."""

from datetime import UTC, datetime, timedelta

import pytest

from trading.signals.base import CursorRules, CursorSignalSource
from trading.signals.types import ParsedRows, SignalCursor, parse_rows

NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)


def row(ts, symbol="AAPL", seq=0, rsi="50"):
    return {
        "event_ts": ts.isoformat(),
        "symbol": symbol,
        "seq": seq,
        "price": "100",
        "macd": "0.1",
        "macd_signal": "0.05",
        "rsi14": rsi,
    }


class ListSource(CursorSignalSource):
    def __init__(self, rows, **kwargs):
        super().__init__(**kwargs)
        self.rows = rows
        self.starts = []

    def _keyed(self):
        return sorted(
            (
                (SignalCursor(datetime.fromisoformat(r["event_ts"]), r["symbol"], r["seq"]), r)
                for r in self.rows
            ),
            key=lambda item: item[0],
        )

    def latest_event_ts(self, now):
        keyed = self._keyed()
        return keyed[-1][0].event_ts if keyed else None

    def read_after(self, start, *, limit, now):
        self.starts.append(start)
        picked = [r for key, r in self._keyed() if key > start][:limit]
        return parse_rows(picked, source="list")


def keys(batch):
    return [(s.event_ts, s.symbol, s.seq) for s in batch.signals]


def test_first_run_starts_at_now_minus_lookback():
    old = NOW - timedelta(minutes=15, seconds=1)
    inside = NOW - timedelta(minutes=14)
    source = ListSource([row(old), row(inside)])
    batch = source.fetch(None, limit=500, now=NOW)
    assert source.starts == [SignalCursor.at(NOW - timedelta(minutes=15))]
    assert keys(batch) == [(inside, "AAPL", 0)]
    assert batch.cursor_after == SignalCursor(inside, "AAPL", 0)
    assert batch.no_signal_reason is None
    assert batch.latest_event_ts == inside
    assert batch.lag_seconds == 840.0
    assert batch.invalid_rows == 0


def test_row_exactly_at_window_start_is_included():
    start = NOW - timedelta(minutes=15)
    batch = ListSource([row(start)]).fetch(None, limit=500, now=NOW)
    assert keys(batch) == [(start, "AAPL", 0)]


def test_lookback_is_configurable():
    source = ListSource([], rules=CursorRules.from_values(lookback_minutes=5))
    source.fetch(None, limit=10, now=NOW)
    assert source.starts == [SignalCursor.at(NOW - timedelta(minutes=5))]


def test_stale_cursor_is_fast_forwarded():
    stale = SignalCursor(NOW - timedelta(hours=2), "AAPL", 3)
    skipped = NOW - timedelta(hours=1)
    kept = NOW - timedelta(minutes=1)
    source = ListSource([row(skipped), row(kept)])
    batch = source.fetch(stale, limit=500, now=NOW)
    assert source.starts == [SignalCursor.at(NOW - timedelta(minutes=15))]
    assert keys(batch) == [(kept, "AAPL", 0)]


def test_stale_cursor_at_stream_tail_is_kept_and_tail_stable():
    latest = NOW - timedelta(hours=2)
    cursor = SignalCursor(latest, "AAPL", 0)
    source = ListSource([row(latest)])
    batch = source.fetch(cursor, limit=500, now=NOW)
    assert source.starts == [cursor]
    assert batch.signals == ()
    assert batch.no_signal_reason == "cursor_tail_stable"
    assert batch.cursor_after == cursor
    assert batch.lag_seconds == 7200.0


def test_strict_ordering_predicate_and_limit_paging():
    t = NOW - timedelta(minutes=1)
    rows = [
        row(t, "MSFT", 2),
        row(t, "AAPL", 1),
        row(t, "AAPL", 2),
        row(t + timedelta(seconds=1), "AAPL", 0),
        row(t, "MSFT", 1),
    ]
    source = ListSource(rows)
    cursor = SignalCursor(t, "AAPL", 1)
    first = source.fetch(cursor, limit=2, now=NOW)
    assert keys(first) == [(t, "AAPL", 2), (t, "MSFT", 1)]
    assert first.cursor_after == SignalCursor(t, "MSFT", 1)
    second = source.fetch(first.cursor_after, limit=2, now=NOW)
    assert keys(second) == [(t, "MSFT", 2), (t + timedelta(seconds=1), "AAPL", 0)]
    third = source.fetch(second.cursor_after, limit=2, now=NOW)
    assert third.signals == ()
    assert third.no_signal_reason == "cursor_tail_stable"
    assert third.cursor_after == second.cursor_after


def test_default_limit_is_500():
    t = NOW - timedelta(minutes=1)
    source = ListSource([row(t, "AAPL", seq) for seq in range(501)])
    batch = source.fetch(None, now=NOW)
    assert len(batch.signals) == 500
    assert batch.cursor_after == SignalCursor(t, "AAPL", 499)


def test_limit_must_be_positive_and_now_aware():
    source = ListSource([])
    with pytest.raises(ValueError, match="limit must be >= 1"):
        source.fetch(None, limit=0, now=NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        source.fetch(None, limit=1, now=datetime(2026, 3, 3, 15, 0))


def test_empty_stream_without_advance_is_no_signals_in_window():
    source = ListSource([], rules=CursorRules.from_values(empty_batch_advance_seconds=0))
    batch = source.fetch(None, limit=500, now=NOW)
    assert batch.no_signal_reason == "no_signals_in_window"
    assert batch.cursor_after == SignalCursor.at(NOW - timedelta(minutes=15))
    assert batch.latest_event_ts is None
    assert batch.lag_seconds is None


def test_empty_stream_advances_cursor_to_now_minus_60s():
    batch = ListSource([]).fetch(None, limit=500, now=NOW)
    assert batch.no_signal_reason == "empty_batch_advanced"
    assert batch.cursor_after == SignalCursor.at(NOW - timedelta(seconds=60))
    assert batch.lag_seconds is None


def test_empty_advance_is_configurable_and_not_applied_to_recent_cursor():
    rules = CursorRules.from_values(empty_batch_advance_seconds=30)
    batch = ListSource([], rules=rules).fetch(None, limit=500, now=NOW)
    assert batch.cursor_after == SignalCursor.at(NOW - timedelta(seconds=30))
    recent = SignalCursor.at(NOW - timedelta(seconds=10))
    again = ListSource([], rules=rules).fetch(recent, limit=500, now=NOW)
    assert again.no_signal_reason == "no_signals_in_window"
    assert again.cursor_after == recent


def test_cursor_ahead_of_stream_rewinds_to_tail():
    latest = NOW - timedelta(minutes=40)
    cursor = SignalCursor.at(NOW - timedelta(minutes=5))  # > latest + 15 min
    source = ListSource([row(latest)])
    batch = source.fetch(cursor, limit=500, now=NOW)
    assert batch.no_signal_reason == "cursor_ahead_of_stream"
    assert batch.cursor_after == SignalCursor.after_time(latest)
    assert batch.lag_seconds == 2400.0
    # next cycle: the rewound cursor sits at the tail, nothing is delivered twice
    nxt = source.fetch(batch.cursor_after, limit=500, now=NOW + timedelta(seconds=5))
    assert nxt.signals == ()
    assert nxt.no_signal_reason == "cursor_tail_stable"


def test_cursor_just_within_lookback_of_latest_is_tail_stable():
    latest = NOW - timedelta(minutes=20)
    cursor = SignalCursor.at(latest + timedelta(minutes=15))  # not strictly beyond
    batch = ListSource([row(latest)]).fetch(cursor, limit=500, now=NOW)
    assert batch.no_signal_reason == "cursor_tail_stable"
    assert batch.cursor_after == cursor


def test_invalid_rows_are_counted_and_skipped_by_the_cursor():
    t = NOW - timedelta(minutes=1)
    source = ListSource([row(t, "AAPL", 1, rsi=""), row(t, "AAPL", 2, rsi="nan")])
    batch = source.fetch(None, limit=500, now=NOW)
    assert batch.signals == ()
    assert batch.invalid_rows == 2
    assert batch.no_signal_reason == "no_signals_in_window"
    assert batch.cursor_after == SignalCursor(t, "AAPL", 2)
    mixed = ListSource([row(t, "AAPL", 1, rsi=""), row(t, "AAPL", 2)]).fetch(None, now=NOW)
    assert keys(mixed) == [(t, "AAPL", 2)]
    assert mixed.invalid_rows == 1
    assert mixed.no_signal_reason is None


def test_rules_validation():
    with pytest.raises(ValueError, match="lookback_minutes must be > 0"):
        CursorRules.from_values(lookback_minutes=0)
    with pytest.raises(ValueError, match="empty_batch_advance_seconds must be >= 0"):
        CursorRules.from_values(empty_batch_advance_seconds=-1)


def test_parsed_rows_default_is_empty():
    assert ParsedRows() == ParsedRows(signals=[], invalid_rows=0, last_key=None)
