import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from trading.signals.replay import ReplaySignalSource, load_signals
from trading.signals.types import SignalCursor
from trading.strategies.registry import get_strategy

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_data"
FIXTURES_DIR = Path(__file__).resolve().parents[3] / "tests" / "fixtures"
ANCHOR = datetime(2026, 5, 4, 13, 0, tzinfo=UTC)
HEADER = "event_ts,symbol,seq,timeframe,price,macd,macd_signal,rsi14\n"


def write_csv(tmp_path, lines):
    path = tmp_path / "signals.csv"
    path.write_text(HEADER + "".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture
def tape(tmp_path):
    # recorded a day earlier, three 1-minute bars for two symbols, one invalid row
    return write_csv(
        tmp_path,
        [
            "2026-03-03T14:31:00Z,AAPL,1,1Min,100.00,0.2,0.1,30",
            "2026-03-03T14:31:00Z,MSFT,1,1Min,400.00,0.2,0.1,50",
            "2026-03-03T14:32:00Z,AAPL,2,1Min,101.00,0.2,0.1,",
            "2026-03-03T14:32:00Z,MSFT,2,1Min,401.00,0.2,0.1,51",
            "2026-03-03T14:33:00Z,AAPL,3,1Min,102.00,-0.2,0.1,70",
            "2026-03-03T14:33:00Z,MSFT,3,1Min,402.00,0.2,0.1,52",
        ],
    )


def summary(batch):
    return [(s.event_ts, s.symbol, s.seq, str(s.price)) for s in batch.signals]


def test_rebases_onto_anchor_and_releases_only_due_rows(tape):
    source = ReplaySignalSource(tape, anchor=ANCHOR, speed=60.0)
    now = ANCHOR + timedelta(seconds=1, milliseconds=500)
    batch = source.fetch(None, limit=500, now=now)
    assert summary(batch) == [
        (ANCHOR, "AAPL", 1, "100.00"),
        (ANCHOR, "MSFT", 1, "400.00"),
        (ANCHOR + timedelta(seconds=1), "MSFT", 2, "401.00"),
    ]
    assert batch.invalid_rows == 1  # AAPL seq 2 has no rsi14
    assert batch.cursor_after == SignalCursor(ANCHOR + timedelta(seconds=1), "MSFT", 2)
    assert batch.latest_event_ts == ANCHOR + timedelta(seconds=1)
    assert batch.lag_seconds == 0.5
    assert batch.no_signal_reason is None
    assert batch.signals[0].features == {"macd": 0.2, "macd_signal": 0.1, "rsi14": 30.0}
    assert batch.signals[0].source == "replay"

    tail = source.fetch(batch.cursor_after, limit=500, now=now)
    assert tail.signals == ()
    assert tail.no_signal_reason == "cursor_tail_stable"
    assert tail.cursor_after == batch.cursor_after


def test_speed_one_plays_in_real_time(tape):
    source = ReplaySignalSource(tape, anchor=ANCHOR, speed=1.0)
    batch = source.fetch(None, limit=500, now=ANCHOR + timedelta(seconds=59))
    assert [s.symbol for s in batch.signals] == ["AAPL", "MSFT"]
    later = source.fetch(batch.cursor_after, limit=500, now=ANCHOR + timedelta(seconds=60))
    assert summary(later) == [(ANCHOR + timedelta(seconds=60), "MSFT", 2, "401.00")]
    assert later.invalid_rows == 1


def test_limit_pages_through_rows(tape):
    source = ReplaySignalSource(tape, anchor=ANCHOR, speed=60.0)
    now = ANCHOR + timedelta(seconds=2)
    first = source.fetch(None, limit=2, now=now)
    assert [(s.symbol, s.seq) for s in first.signals] == [("AAPL", 1), ("MSFT", 1)]
    second = source.fetch(first.cursor_after, limit=2, now=now)
    assert [(s.symbol, s.seq) for s in second.signals] == [("MSFT", 2)]
    assert second.invalid_rows == 1
    third = source.fetch(second.cursor_after, limit=2, now=now)
    assert [(s.symbol, s.seq) for s in third.signals] == [("AAPL", 3), ("MSFT", 3)]


def test_loop_restarts_one_bar_after_the_end_with_increasing_seq(tape):
    source = ReplaySignalSource(tape, anchor=ANCHOR, speed=60.0, loop=True)
    # the recorded span is 2 min, plus one 1-minute bar gap: a pass lasts 3 file minutes = 3 s
    cursor = SignalCursor(ANCHOR + timedelta(seconds=2), "MSFT", 3)
    at_end = source.fetch(cursor, limit=500, now=ANCHOR + timedelta(seconds=2, milliseconds=999))
    assert at_end.no_signal_reason == "cursor_tail_stable"
    second_pass = source.fetch(cursor, limit=500, now=ANCHOR + timedelta(seconds=3))
    assert summary(second_pass) == [
        (ANCHOR + timedelta(seconds=3), "AAPL", 5, "100.00"),  # seq + (max seq 3 + 1)
        (ANCHOR + timedelta(seconds=3), "MSFT", 5, "400.00"),
    ]
    third_pass = source.fetch(None, limit=500, now=ANCHOR + timedelta(seconds=6))
    assert [(s.symbol, s.seq) for s in third_pass.signals][-2:] == [("AAPL", 9), ("MSFT", 9)]
    assert third_pass.signals[-1].event_ts == ANCHOR + timedelta(seconds=6)
    assert len(third_pass.signals) == 12  # 2 full passes of 5 valid rows + 2
    assert third_pass.invalid_rows == 2


def test_without_loop_the_feed_ends(tape):
    source = ReplaySignalSource(tape, anchor=ANCHOR, speed=60.0, loop=False)
    now = ANCHOR + timedelta(minutes=5)
    batch = source.fetch(None, limit=500, now=now)
    assert [(s.symbol, s.seq) for s in batch.signals] == [
        ("AAPL", 1),
        ("MSFT", 1),
        ("MSFT", 2),
        ("AAPL", 3),
        ("MSFT", 3),
    ]
    assert batch.latest_event_ts == ANCHOR + timedelta(seconds=2)
    after = source.fetch(batch.cursor_after, limit=500, now=now + timedelta(hours=1))
    assert after.signals == ()
    assert after.latest_event_ts == ANCHOR + timedelta(seconds=2)
    assert after.no_signal_reason == "cursor_tail_stable"


def test_before_the_anchor_nothing_is_released(tape):
    source = ReplaySignalSource(tape, anchor=ANCHOR, speed=60.0)
    now = ANCHOR - timedelta(seconds=10)
    batch = source.fetch(None, limit=500, now=now)
    assert batch.signals == ()
    assert batch.latest_event_ts is None
    assert batch.no_signal_reason == "empty_batch_advanced"
    assert batch.cursor_after == SignalCursor.at(now - timedelta(seconds=60))


def test_deterministic(tape):
    now = ANCHOR + timedelta(seconds=7, microseconds=123)
    one = ReplaySignalSource(tape, anchor=ANCHOR, speed=60.0).fetch(None, limit=500, now=now)
    two = ReplaySignalSource(tape, anchor=ANCHOR, speed=60.0).fetch(None, limit=500, now=now)
    assert one == two


def test_fractional_speed_rebases_exactly(tape):
    source = ReplaySignalSource(tape, anchor=ANCHOR, speed=7.0)
    batch = source.fetch(None, limit=500, now=ANCHOR + timedelta(seconds=20))
    # 60 s of file time at 7x = 8.571428 s (floored to the microsecond)
    assert [s.event_ts for s in batch.signals] == [
        ANCHOR,
        ANCHOR,
        ANCHOR + timedelta(microseconds=8_571_428),
        ANCHOR + timedelta(microseconds=17_142_857),
        ANCHOR + timedelta(microseconds=17_142_857),
    ]


def test_jsonl_and_json_files(tmp_path):
    rows = [
        {
            "event_ts": "2026-01-01T00:01:00+00:00",
            "symbol": "AAPL",
            "seq": 1,
            "payload": {"macd": {"macd": 1.2, "signal": 0.5}, "rsi14": 20, "price": "100"},
        },
        {"event_ts": "2026-01-01T00:02:00+00:00", "symbol": "AAPL", "seq": 2, "payload": {}},
    ]
    jsonl = tmp_path / "s.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    batch = ReplaySignalSource(jsonl, anchor=ANCHOR).fetch(None, limit=10, now=ANCHOR)
    assert [(s.symbol, s.seq, s.price) for s in batch.signals] == [("AAPL", 1, Decimal("100"))]
    assert batch.invalid_rows == 0  # the second row plays 60 s later
    as_json = tmp_path / "s.json"
    as_json.write_text(json.dumps(rows), encoding="utf-8")
    signals, invalid = load_signals(as_json)
    assert [s.seq for s in signals] == [1]
    assert invalid == 1


def test_speed_must_be_positive(tape):
    with pytest.raises(ValueError, match="speed must be > 0"):
        ReplaySignalSource(tape, anchor=ANCHOR, speed=0)


def test_walkforward_fixture_is_the_three_aapl_signals():
    signals, invalid = load_signals(FIXTURES_DIR / "walkforward_signals.json", source="fixture")
    assert invalid == 0
    assert [(s.event_ts, s.symbol, s.timeframe, s.price, dict(s.features)) for s in signals] == [
        (
            datetime(2026, 1, 1, 0, 1, tzinfo=UTC),
            "AAPL",
            "1Min",
            Decimal("100.00"),
            {"macd": 1.2, "macd_signal": 0.5, "rsi14": 20.0},
        ),
        (
            datetime(2026, 1, 1, 0, 2, tzinfo=UTC),
            "AAPL",
            "1Min",
            Decimal("101.00"),
            {"macd": -0.2, "macd_signal": 0.1, "rsi14": 75.0},
        ),
        (
            datetime(2026, 1, 1, 0, 4, tzinfo=UTC),
            "AAPL",
            "1Min",
            Decimal("102.00"),
            {"macd": 0.2, "macd_signal": 0.1, "rsi14": 30.0},
        ),
    ]
    legacy = get_strategy("legacy_macd_rsi")
    actions = [
        legacy.evaluate(s, {"buy_rsi_threshold": 35, "sell_rsi_threshold": 65}) for s in signals
    ]
    assert [a.action if a else None for a in actions] == ["buy", "sell", "buy"]


def test_bundled_sample_trades_within_a_minute_at_60x():
    """`make run` replays the bundled file at 60x with a 5 s poll: the first minute trades."""
    source = ReplaySignalSource(SAMPLE_DIR / "signals-sample.csv", anchor=ANCHOR, speed=60.0)
    legacy = get_strategy("legacy_macd_rsi")
    cursor = None
    actions = {"buy": 0, "sell": 0}
    delivered = invalid = 0
    for tick in range(13):  # polls at 0, 5, ..., 60 s
        batch = source.fetch(cursor, limit=500, now=ANCHOR + timedelta(seconds=5 * tick))
        cursor = batch.cursor_after or cursor
        delivered += len(batch.signals)
        invalid += batch.invalid_rows
        for signal in batch.signals:
            intent = legacy.evaluate(signal, {})
            if intent:
                actions[intent.action] += 1
    assert delivered == 61 * 5  # file minutes 0..60, five symbols
    assert invalid == 0
    assert actions == {"buy": 11, "sell": 5}  # = the first 61 recorded minutes evaluated directly
