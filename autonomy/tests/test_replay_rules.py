"""The matching rule of the live-versus-replay check on plain values (autonomy/replay.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from autonomy.engine.data import datetime_to_ns, frame_from_rows
from autonomy.replay import STALE_POSITION, LiveDecision, ReplayDecision, compare

T0 = datetime(2026, 3, 3, 14, 31, tzinfo=UTC)


def frame(n: int = 6):
    rows = [
        {
            "event_ts": (T0 + timedelta(minutes=i)).isoformat(),
            "symbol": "AAA",
            "seq": i,
            "timeframe": "1Min",
            "price": "100.00",
            "macd": 1.0,
            "macd_signal": 0.5,
            "rsi14": 50.0,
        }
        for i in range(n)
    ]
    return frame_from_rows(rows).frame


def live(i: int, side: str = "buy", **changes) -> LiveDecision:
    fields = {
        "id": 100 + i,
        "symbol": "AAA",
        "event_ts": T0 + timedelta(minutes=i),
        "seq": i,
        "side": side,
        "status": "filled",
        "reject_reason": "",
        "qty": 10.0,
        "arrival_price": 100.0,
        "fill_price": 100.05,
    }
    return LiveDecision(**{**fields, **changes})


def replayed(i: int, side: str = "buy", **changes) -> ReplayDecision:
    fields = {
        "symbol": "AAA",
        "ts_ns": datetime_to_ns(T0 + timedelta(minutes=i)),
        "seq": i,
        "side": side,
        "status": "accepted",
        "reason": "",
        "qty": 10.0,
        "arrival_price": 100.0,
        "fill_price": 100.05,
        "later_fills": (),
    }
    return ReplayDecision(**{**fields, **changes})


def classes(result) -> list[tuple[str, str]]:
    return [(m["class"], m["detail"]) for m in result.mismatches]


def test_the_same_decision_and_fill_match():
    result = compare([live(1)], [replayed(1)], frame=frame())
    assert (result.matched, result.mismatches, result.unexplained) == (1, [], 0)
    assert [round(x, 9) for x in (*result.realised_bps, *result.modelled_bps)] == [5.0, 5.0]


def test_one_bar_apart_is_timing_and_further_apart_is_a_rule_divergence():
    near = compare([live(2)], [replayed(3)], frame=frame())
    assert classes(near) == [("timing", "decided one bar apart")]
    assert near.unexplained == 0
    far = compare([live(1)], [replayed(3)], frame=frame())
    assert classes(far) == [
        ("rule_divergence", "live only, signal recorded"),
        ("rule_divergence", "replay only"),
    ]
    assert far.unexplained == 2
    other_side = compare([live(2)], [replayed(3, side="sell")], frame=frame())
    assert other_side.unexplained == 2


def test_a_fill_off_the_model_is_fill_model_unless_it_is_a_later_bars_fill():
    off = compare([live(1, fill_price=100.20)], [replayed(1)], frame=frame())
    assert classes(off) == [("fill_model", "fill price differs")]
    assert off.mismatches[0]["realised_bps"] == 20.0
    late = compare(
        [live(1, fill_price=100.20)], [replayed(1, later_fills=(100.10, 100.20))], frame=frame()
    )
    assert classes(late) == [("timing", "filled at a later bar's price")]
    qty = compare([live(1, qty=9.0)], [replayed(1)], frame=frame())
    assert classes(qty) == [("fill_model", "quantity differs")]
    unfilled = compare([live(1, fill_price=None, status="submitted")], [replayed(1)], frame=frame())
    assert classes(unfilled) == [("fill_model", "no live fill")]


def test_outcomes_that_differ_follow_an_earlier_mismatch_of_the_symbol():
    # a data gap drops a buy from the replay; the sell live accepted is rejected there
    missing = live(30, seq=99)  # no recorded row has seq 99
    sell_live = live(40, side="sell")
    sell_replay = replayed(40, side="sell", status="rejected", reason="shorts_not_allowed", qty=0.0)
    result = compare([missing, sell_live], [sell_replay], frame=frame(45))
    assert classes(result) == [
        ("data_gap", "signal not recorded"),
        ("data_gap", "outcome differs: consequence of an earlier data_gap"),
    ]
    alone = compare([sell_live], [sell_replay], frame=frame(45))
    assert classes(alone) == [("rule_divergence", "outcome differs")]


def test_live_gates_are_explained_and_modelled_rejections_match():
    gated = live(1, status="rejected", reject_reason="insufficient_buying_power", fill_price=None)
    both = live(2, side="sell", status="rejected", reject_reason="shorts_not_allowed")
    result = compare(
        [gated, both],
        [
            replayed(1, status="suppressed", reason="live_gate", qty=0.0, fill_price=None),
            replayed(2, side="sell", status="rejected", reason="shorts_not_allowed", qty=0.0),
        ],
        frame=frame(),
    )
    assert classes(result) == [("live_gate", "live gate: insufficient_buying_power")]
    assert (result.matched, result.unexplained) == (1, 0)


def test_a_sell_refused_on_a_stale_snapshot_is_timing_when_its_own_fills_covered_it():
    refused = {"status": "rejected", "reject_reason": "shorts_not_allowed", "fill_price": None}
    covered = live(2, side="sell", booked_qty=10.0, **refused)
    result = compare([covered], [replayed(2, side="sell")], frame=frame())
    assert classes(result) == [("timing", STALE_POSITION)]
    short = live(2, side="sell", booked_qty=5.0, **refused)
    assert classes(compare([short], [replayed(2, side="sell")], frame=frame())) == [
        ("rule_divergence", "outcome differs")
    ]
