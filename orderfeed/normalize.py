"""Trade-update messages → one normalised shape (docs/compatibility.md#order-feed).
Pure functions, no database.

Accepted shapes:
- `{"channel": "trade_updates", "payload": {event, timestamp, order}, "seq", "accountLabel"?}`
  (the torghut-ws forwarder, the simulated broker, and this project's bridge);
- `{"stream": "trade_updates", "data": {...}}` (Alpaca's websocket frame, forwarded as is);
- a bare `{"order": {...}, "event": ...}`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

import orjson

from trading.models.executions import ExecutionStatus

ORDER_STATUSES = frozenset(ExecutionStatus.values)
_FRACTION = re.compile(r"(\.\d{6})\d+")
# orjson reads an integer beyond 64 bits as a float (json keeps it exact): a run of 19 digits
# sends the text to json. Digits map to "1", all else to "0"; two passes in C (a regex is slower).
_DIGIT_MASK = bytes(0x31 if 0x30 <= b <= 0x39 else 0x30 for b in range(256))
_LONG_RUN = b"1" * 19


class InvalidTradeUpdate(ValueError):
    """A message that cannot be a trade update; `reason` is its dead-letter reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class TradeUpdate(NamedTuple):
    """One trade update, normalised (immutable; a tuple, so cheap to build per event)."""

    account_label: str
    event_type: str
    broker_order_id: str
    client_order_id: str
    symbol: str
    status: str
    event_ts: datetime | None
    feed_seq: int | None
    qty: Decimal | None
    filled_qty: Decimal | None
    avg_fill_price: Decimal | None
    order: dict[str, Any]
    raw: dict[str, Any]
    raw_text: str
    fingerprint: str

    @property
    def applicable_status(self) -> str | None:
        return self.status if self.status in ORDER_STATUSES else None


def parse_trade_update(value: bytes | None, *, default_account: str) -> TradeUpdate:
    envelope, raw_text = _envelope(value)
    payload = _payload(envelope)
    order = payload.get("order")
    order = order if isinstance(order, dict) else {}

    order_id = _text(order.get("id") or payload.get("order_id"))
    client_order_id = _text(order.get("client_order_id") or payload.get("client_order_id"))
    if not order_id and not client_order_id:
        raise InvalidTradeUpdate("missing_fields", "neither order id nor client order id")

    account = _text(
        _first(
            payload.get("account_label"),
            payload.get("accountLabel"),
            envelope.get("account_label"),
            envelope.get("accountLabel"),
        )
    )
    event_type = _text(payload.get("event") or payload.get("event_type"))
    status = _text(order.get("status") or payload.get("status")).lower()
    symbol = _text(order.get("symbol") or payload.get("symbol") or envelope.get("symbol")).upper()
    event_ts = _timestamp(
        _first(
            payload.get("timestamp"),
            payload.get("t"),
            order.get("updated_at"),
            order.get("submitted_at"),
            envelope.get("event_ts"),
        )
    )
    seq = _integer(_first(envelope.get("seq"), payload.get("seq")), "seq")
    qty = _decimal(_first(order.get("qty"), payload.get("qty")), "qty")
    filled_qty = _decimal(_first(order.get("filled_qty"), payload.get("filled_qty")), "filled_qty")
    avg = _decimal(
        _first(
            order.get("filled_avg_price"),
            order.get("avg_fill_price"),
            payload.get("filled_avg_price"),
            payload.get("avg_fill_price"),
        ),
        "filled_avg_price",
    )
    account = account or default_account
    fingerprint = _fingerprint(
        account,
        order_id,
        client_order_id,
        event_type,
        status,
        event_ts.isoformat() if event_ts else None,
        seq,
        _canonical(qty),
        _canonical(filled_qty),
        _canonical(avg),
    )
    return TradeUpdate(  # positional: the tuple's fields in order
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


def _envelope(value: bytes | None) -> tuple[dict[str, Any], str]:
    """The message as a JSON object, and its text (`invalid_json` when it is neither)."""
    if value is None:
        raise InvalidTradeUpdate("invalid_json", "empty message (tombstone)")
    try:
        raw_text = value.decode("utf-8")
        envelope = _loads(value, raw_text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidTradeUpdate("invalid_json", f"not JSON: {exc}") from exc
    if not isinstance(envelope, dict):
        raise InvalidTradeUpdate("invalid_json", "not a JSON object")
    return envelope, raw_text


def _fingerprint(*identity: object) -> str:
    """sha256 of the identity fields in a fixed order, numbers canonical (4 == 4.000), joined
    unambiguously."""
    joined = "\x1f".join(["" if v is None else str(v) for v in identity])
    return hashlib.sha256(joined.encode()).hexdigest()


def _loads(value: bytes, text: str) -> Any:
    """orjson (several times faster) when it reads the text exactly as the standard library
    does; otherwise — an integer beyond 64 bits, NaN/Infinity, invalid JSON — the standard
    library, whose result and error message stay what they always were."""
    if _LONG_RUN not in value.translate(_DIGIT_MASK):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def _payload(envelope: dict[str, Any]) -> dict[str, Any]:
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


def _first(*values: Any) -> Any:
    for value in values:
        if value is not None and value != "":
            return value
    return None


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _decimal(value: Any, name: str) -> Decimal | None:
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


def _integer(value: Any, name: str) -> int | None:
    if value is None:
        return None
    try:
        number = int(str(value))
    except ValueError as exc:
        raise InvalidTradeUpdate("invalid_fields", f"{name} is not an integer: {value!r}") from exc
    return number


def _canonical(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def _timestamp(value: Any) -> datetime | None:
    """ISO-8601 (Alpaca sends nanoseconds and `Z`) or epoch seconds/ms/µs/ns."""
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
        return _timestamp(int(text))
    text = text.replace("Z", "+00:00").replace("z", "+00:00")
    if "." in text:
        text = _FRACTION.sub(r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidTradeUpdate("invalid_fields", f"timestamp not ISO-8601: {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
