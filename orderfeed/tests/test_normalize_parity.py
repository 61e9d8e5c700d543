"""The faster parser (orjson, a tuple instead of a frozen dataclass) reads every message exactly as
the first one did: same fields, same fingerprint, same refusal. Events stored before the change
must dedupe against the same update arriving after it, so the fingerprint may never move.

`_reference_parse` is the parser as it was (commit 8278c58), kept here as the oracle.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import pytest

from orderfeed.normalize import InvalidTradeUpdate, parse_trade_update

# -- the oracle: the original parser, verbatim but for returning a tuple ---------------------------
_FRACTION = re.compile(r"(\.\d{6})\d+")


def _reference_parse(value: bytes | None, *, default_account: str) -> tuple[Any, ...]:
    if value is None:
        raise InvalidTradeUpdate("invalid_json", "empty message (tombstone)")
    try:
        raw_text = value.decode("utf-8")
        envelope = json.loads(raw_text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidTradeUpdate("invalid_json", f"not JSON: {exc}") from exc
    if not isinstance(envelope, dict):
        raise InvalidTradeUpdate("invalid_json", "not a JSON object")
    payload = _r_payload(envelope)
    order = payload.get("order")
    order = order if isinstance(order, dict) else {}
    order_id = _r_text(order.get("id") or payload.get("order_id"))
    client_order_id = _r_text(order.get("client_order_id") or payload.get("client_order_id"))
    if not order_id and not client_order_id:
        raise InvalidTradeUpdate("missing_fields", "neither order id nor client order id")
    account = _r_text(
        _r_first(
            payload.get("account_label"),
            payload.get("accountLabel"),
            envelope.get("account_label"),
            envelope.get("accountLabel"),
        )
    )
    event_type = _r_text(payload.get("event") or payload.get("event_type"))
    status = _r_text(order.get("status") or payload.get("status")).lower()
    symbol = _r_text(order.get("symbol") or payload.get("symbol") or envelope.get("symbol")).upper()
    event_ts = _r_timestamp(
        _r_first(
            payload.get("timestamp"),
            payload.get("t"),
            order.get("updated_at"),
            order.get("submitted_at"),
            envelope.get("event_ts"),
        )
    )
    seq = _r_integer(_r_first(envelope.get("seq"), payload.get("seq")), "seq")
    qty = _r_decimal(_r_first(order.get("qty"), payload.get("qty")), "qty")
    filled_qty = _r_decimal(
        _r_first(order.get("filled_qty"), payload.get("filled_qty")), "filled_qty"
    )
    avg = _r_decimal(
        _r_first(
            order.get("filled_avg_price"),
            order.get("avg_fill_price"),
            payload.get("filled_avg_price"),
            payload.get("avg_fill_price"),
        ),
        "filled_avg_price",
    )
    account = account or default_account
    identity = "\x1f".join(
        "" if v is None else str(v)
        for v in (
            account,
            order_id,
            client_order_id,
            event_type,
            status,
            event_ts.isoformat() if event_ts else None,
            seq,
            _r_canonical(qty),
            _r_canonical(filled_qty),
            _r_canonical(avg),
        )
    )
    fingerprint = hashlib.sha256(identity.encode()).hexdigest()
    return (
        account[:64],
        event_type[:32],
        order_id[:64],
        client_order_id[:64],
        symbol[:32],
        status[:24],
        event_ts,
        seq,
        qty,
        filled_qty,
        avg,
        order,
        envelope,
        raw_text,
        fingerprint,
    )


def _r_payload(envelope: dict[str, Any]) -> dict[str, Any]:
    if "channel" in envelope or "payload" in envelope:
        channel = envelope.get("channel", "trade_updates")
        payload = envelope.get("payload")
        if channel != "trade_updates" or not isinstance(payload, dict):
            raise InvalidTradeUpdate("missing_fields", f"no trade-update payload ({channel!r})")
        return payload
    if "stream" in envelope or "data" in envelope:
        stream = envelope.get("stream", "trade_updates")
        data = envelope.get("data")
        if stream != "trade_updates" or not isinstance(data, dict):
            raise InvalidTradeUpdate("missing_fields", f"no trade-update payload ({stream!r})")
        return data
    if isinstance(envelope.get("order"), dict) or "order_id" in envelope:
        return envelope
    raise InvalidTradeUpdate("missing_fields", "no trade-update payload")


def _r_first(*values: Any) -> Any:
    for value in values:
        if value is not None and value != "":
            return value
    return None


def _r_text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _r_decimal(value: Any, name: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidTradeUpdate("invalid_fields", f"{name} is not a number: {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise InvalidTradeUpdate("invalid_fields", f"{name} is not a number: {value!r}") from exc
    if not number.is_finite() or number < 0:
        raise InvalidTradeUpdate("invalid_fields", f"{name} must be finite and >= 0: {value!r}")
    return number


def _r_integer(value: Any, name: str) -> int | None:
    if value is None:
        return None
    try:
        number = int(str(value))
    except ValueError as exc:
        raise InvalidTradeUpdate("invalid_fields", f"{name} is not an integer: {value!r}") from exc
    return number


def _r_canonical(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def _r_timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        if not math.isfinite(number):
            raise InvalidTradeUpdate("invalid_fields", f"timestamp is not finite: {value!r}")
        for scale in (1, 1e3, 1e6, 1e9):
            if abs(number / scale) < 1e11:
                return datetime.fromtimestamp(number / scale, tz=UTC)
    text = str(value).strip()
    if text.isdigit():
        return _r_timestamp(int(text))
    text = _FRACTION.sub(r"\1", text.replace("Z", "+00:00").replace("z", "+00:00"))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidTradeUpdate("invalid_fields", f"timestamp not ISO-8601: {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# -- the comparison ------------------------------------------------------------------------------
def _outcome(parse: Any, value: bytes | None) -> tuple[Any, ...]:
    try:
        fields = tuple(parse(value, default_account="paper"))
    except InvalidTradeUpdate as exc:
        return ("refused", exc.reason, str(exc))
    except Exception as exc:  # the original let some errors through: so must the new one
        return ("raised", type(exc).__name__, str(exc))
    # repr tells 1 from 1.0 and True, Decimal("10") from Decimal("1E+1"), and walks the dicts
    return ("parsed", *(repr(f) for f in fields))


IDS = ["o-1", "  o-2 ", "", None, 12345, 1.5, "ü-ñ", "12345678901234567890123", True, {"x": 1}]
LANES = [None, "", "lane-b", " lane-c ", 7]
STATUSES = ["new", "FILLED", " partially_filled ", "weird", "", None, 3]
SYMBOLS = ["aapl", "BRK.B", "", None, " msft "]
TIMES = [
    None,
    "",
    "2026-03-03T14:30:01Z",
    "2026-03-03T14:30:01.123456789Z",
    "2026-03-03t14:30:01.5z",
    "2026-03-03T14:30:01.1234567+02:00",
    "2026-03-03 14:30:01",
    "2026-03-03T14:30:01,25Z",
    "yesterday",
    "2026-03-03T24:00:00Z",
    1772548200,
    1772548200000,
    1772548200000000,
    1772548200000000000,
    1772548200.25,
    "1772548200000",
    -5,
    1e300,
    True,
    99999999999999999999,
]
SEQS = [None, "", 1, 7, "8", -3, "x", 3.0, 10**20, True, " 9 "]
NUMBERS = [
    None,
    "",
    "10",
    "4.000",
    "0",
    4,
    0.1,
    1e-7,
    1e20,
    "1e3",
    "-1",
    "NaN",
    "inf",
    True,
    10**25,
    {"n": 1},
    "1E+1",
    100.5,
    2.5e-10,
    " 3 ",
]


def _random_message(rng: random.Random) -> bytes:
    order: dict[str, Any] = {}
    for key, pool in (
        ("id", IDS),
        ("client_order_id", IDS),
        ("status", STATUSES),
        ("symbol", SYMBOLS),
        ("qty", NUMBERS),
        ("filled_qty", NUMBERS),
        (rng.choice(["filled_avg_price", "avg_fill_price"]), NUMBERS),
        (rng.choice(["updated_at", "submitted_at"]), TIMES),
    ):
        if rng.random() < 0.8:
            order[key] = rng.choice(pool)
    payload: dict[str, Any] = {"order": order} if rng.random() < 0.9 else {}
    for key, pool in (
        (rng.choice(["event", "event_type"]), ["new", "fill", "", None]),
        (rng.choice(["timestamp", "t"]), TIMES),
        (rng.choice(["account_label", "accountLabel"]), LANES),
        ("order_id", IDS),
        ("seq", SEQS),
        ("qty", NUMBERS),
        ("status", STATUSES),
    ):
        if rng.random() < 0.3:
            payload[key] = rng.choice(pool)
    shape = rng.choice(["channel", "stream", "bare", "channel", "other"])
    if shape == "channel":
        envelope: dict[str, Any] = {"channel": "trade_updates", "payload": payload}
    elif shape == "stream":
        envelope = {"stream": rng.choice(["trade_updates", "quotes"]), "data": payload}
    elif shape == "bare":
        envelope = dict(payload)
    else:
        envelope = {
            "channel": rng.choice(["trade_updates", "bars"]),
            "payload": rng.choice([payload, [], 1]),
        }
    for key, pool in (
        ("seq", SEQS),
        (rng.choice(["accountLabel", "account_label"]), LANES),
        ("event_ts", TIMES),
        ("symbol", SYMBOLS),
    ):
        if rng.random() < 0.3:
            envelope[key] = rng.choice(pool)
    text = json.dumps(envelope, indent=rng.choice([None, 1]), ensure_ascii=rng.random() < 0.5)
    if rng.random() < 0.05:
        text = text.replace("{", '{"nan": NaN, ', 1)  # json reads NaN, orjson does not
    if rng.random() < 0.03:
        text = text.replace("{", '{"dup": 1, "dup": 2.50, ', 1)
    return text.encode()


def test_random_messages_parse_exactly_as_before():
    rng = random.Random(20261125)
    outcomes: dict[str, int] = {}
    for _ in range(6000):
        value = _random_message(rng)
        expected = _outcome(_reference_parse, value)
        assert _outcome(parse_trade_update, value) == expected, value
        outcomes[expected[0]] = outcomes.get(expected[0], 0) + 1
    # the corpus exercises every path, parsed and refused alike
    assert outcomes["parsed"] > 1000
    assert outcomes["refused"] > 1000


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"{not json",
        b"\xff\xfe{}",
        b'\xef\xbb\xbf{"order": {"id": "x"}}',  # a BOM
        b"[1, 2]",
        b'"text"',
        b'{"order": {"id": "x", "seq": 1}, "seq": 18446744073709551615}',  # u64 max
        b'{"order": {"id": "x"}, "seq": 18446744073709551616}',  # beyond 64 bits
        b'{"order": {"id": "x"}, "seq": -9223372036854775809}',
        b'{"order": {"id": 123456789012345678901234567890, "qty": 1e400}}',
        b'{"order": {"id": "x", "qty": 12345678901234567890.5}}',
        b'{"order": {"id": "x", "qty": Infinity}}',
        b'{"order": {"id": "\\ud800"}}',  # a lone surrogate: json reads it, orjson does not
        b'{"order": {"id": "\\u00e9\\u0000"}}',
        b'{"order": {"id": "x"}, "t": 1e11}',
        b'{"order": {"id": "x"}, "t": 99999999999999999999}',
        b'{"order": {"id": "x"}, "t": "2026-03-03T14:30:00.000000123Z"}',
        b'{"order": {"id": "x"}, "t": "\\u0663\\u0663"}',  # Arabic-Indic digits
        b'{"order": {"id": "x"}, "t": NaN}',
        b'{"order": {"id": "x"}}' + b" " * 40 + b"\n",
        json.dumps({"order": {"id": "deep", "x": [[[[[[[[1]]]]]]]]}}).encode(),
    ],
)
def test_edge_cases_parse_exactly_as_before(value):
    assert _outcome(parse_trade_update, value) == _outcome(_reference_parse, value)
