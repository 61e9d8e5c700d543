"""Message shapes and fields of the order feed (inventory §7), without a database."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from orderfeed.normalize import InvalidTradeUpdate, parse_trade_update

ORDER = {
    "id": "o-1",
    "client_order_id": "tg-abc",
    "symbol": "aapl",
    "qty": "10",
    "filled_qty": "4",
    "filled_avg_price": "101.5",
    "status": "partially_filled",
    "updated_at": "2026-03-03T14:30:01.123456789Z",
}


def parse(obj, default="paper"):
    return parse_trade_update(json.dumps(obj).encode(), default_account=default)


def test_channel_envelope_with_seq_and_account_label():
    update = parse(
        {
            "channel": "trade_updates",
            "payload": {
                "event": "partial_fill",
                "timestamp": "2026-03-03T14:30:02Z",
                "order": ORDER,
            },
            "seq": 7,
            "accountLabel": "lane-b",
        }
    )
    assert update.account_label == "lane-b"
    assert update.event_type == "partial_fill"
    assert update.broker_order_id == "o-1"
    assert update.client_order_id == "tg-abc"
    assert update.symbol == "AAPL"
    assert update.status == "partially_filled"
    assert update.feed_seq == 7
    assert update.event_ts == datetime(2026, 3, 3, 14, 30, 2, tzinfo=UTC)
    assert update.qty == Decimal("10")
    assert update.filled_qty == Decimal("4")
    assert update.avg_fill_price == Decimal("101.5")


def test_stream_envelope_and_bare_order_fall_back_to_order_time_and_default_lane():
    stream = parse({"stream": "trade_updates", "data": {"event": "fill", "order": ORDER}})
    bare = parse({"event_type": "fill", "order": ORDER}, default="live")
    # nanoseconds truncated to microseconds, `Z` understood
    assert stream.event_ts == datetime(2026, 3, 3, 14, 30, 1, 123456, tzinfo=UTC)
    assert stream.account_label == "paper"
    assert bare.account_label == "live"
    assert bare.event_type == "fill"


def test_payload_label_wins_over_envelope_label():
    update = parse(
        {
            "channel": "trade_updates",
            "accountLabel": "envelope-lane",
            "payload": {"event": "new", "account_label": "payload-lane", "order": ORDER},
        }
    )
    assert update.account_label == "payload-lane"


def test_avg_fill_price_alias_and_epoch_timestamps():
    order = {k: v for k, v in ORDER.items() if k != "filled_avg_price"}
    update = parse({"order": {**order, "avg_fill_price": "99"}, "t": 1772548200000})
    assert update.avg_fill_price == Decimal("99")
    assert update.event_ts == datetime(2026, 3, 3, 14, 30, tzinfo=UTC)


def test_fingerprint_ignores_representation_but_not_content():
    a = parse({"order": {**ORDER, "filled_qty": "4"}})
    b = parse({"order": {**ORDER, "filled_qty": "4.000"}})
    c = parse({"order": {**ORDER, "filled_qty": "5"}})
    d = parse({"order": ORDER}, default="other-lane")
    assert a.fingerprint == b.fingerprint
    assert len({a.fingerprint, c.fingerprint, d.fingerprint}) == 3


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "invalid_json"),
        (None, "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (b'{"channel": "quotes", "payload": {}}', "missing_fields"),
        (b'{"hello": "world"}', "missing_fields"),
        (b'{"order": {"symbol": "AAPL", "status": "new"}}', "missing_fields"),
        (b'{"order": {"id": "x", "qty": "ten"}}', "invalid_fields"),
        (b'{"order": {"id": "x", "filled_qty": "NaN"}}', "invalid_fields"),
        (b'{"order": {"id": "x"}, "timestamp": "yesterday"}', "invalid_fields"),
    ],
)
def test_invalid_messages_have_a_reason(value, reason):
    with pytest.raises(InvalidTradeUpdate) as caught:
        parse_trade_update(value, default_account="paper")
    assert caught.value.reason == reason
