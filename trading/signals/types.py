"""Signal records shared by every signal source, and the row normalization into them.

Two row shapes exist in `torghut.ta_signals` (docs/compatibility.md#signals):
- "flat": one column per feature (`macd`, `macd_signal`, `rsi14`, ... or the older `signal`, `rsi`,
  `ema`, `vwap`, `imbalance_spread`), a time column `event_ts` or `ts`, optionally `seq`,
  `timeframe`, `price`/`close` and a `signal_json` column holding an envelope payload;
- "envelope": `event_ts, ingest_ts, symbol, seq, source, window_size, window_step` plus a JSON
  `payload` with nested groups: macd{macd,signal,hist}, ema{ema12,ema26}, rsi14,
  boll{mid,upper,lower}, vwap{session,w5m}, vol_realized{w60s}, imbalance{spread,bid_px,ask_px},
  price/close (flat keys inside the payload are accepted too).

`parse_signal_row` never raises: a row without price, macd, macd_signal or rsi14, or with any
non-finite number, is invalid (`None`); callers count those in `SignalBatch.invalid_rows`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from trading.indicators import FEATURE_KEYS

FEATURE_SCHEMA_VERSION = "3.0.0"
REQUIRED_FEATURES = ("macd", "macd_signal", "rsi14")
MAX_SYMBOL = "\U0010ffff"
MAX_SEQ = 2**63 - 1

# the indicators computed from bars, plus the microstructure fields a feed may carry and the
# volume of the signal's own bar (read by the participation cap, `trading.gates`)
SIGNAL_FEATURE_KEYS = (*FEATURE_KEYS, "spread", "imbalance_bid_px", "imbalance_ask_px", "volume")

# flat column -> feature key; the first present column wins
_FLAT_ALIASES: dict[str, tuple[str, ...]] = {
    "macd": ("macd",),
    "macd_signal": ("macd_signal", "signal"),
    "macd_hist": ("macd_hist",),
    "rsi14": ("rsi14", "rsi"),
    "ema12": ("ema12", "ema"),
    "ema26": ("ema26",),
    "vwap_session": ("vwap_session", "vwap"),
    "vwap_w5m": ("vwap_w5m",),
    "boll_mid": ("boll_mid",),
    "boll_upper": ("boll_upper",),
    "boll_lower": ("boll_lower",),
    "vol_realized_w60s": ("vol_realized_w60s",),
    "spread": ("spread", "imbalance_spread"),
    "imbalance_bid_px": ("imbalance_bid_px",),
    "imbalance_ask_px": ("imbalance_ask_px",),
    "volume": ("volume",),
}

# envelope payload group -> (group key -> feature key)
_PAYLOAD_GROUPS: dict[str, dict[str, str]] = {
    "macd": {"macd": "macd", "signal": "macd_signal", "hist": "macd_hist"},
    "ema": {"ema12": "ema12", "ema26": "ema26"},
    "boll": {"mid": "boll_mid", "upper": "boll_upper", "lower": "boll_lower"},
    "vwap": {"session": "vwap_session", "w5m": "vwap_w5m"},
    "vol_realized": {"w60s": "vol_realized_w60s"},
    "imbalance": {"spread": "spread", "bid_px": "imbalance_bid_px", "ask_px": "imbalance_ask_px"},
}


@dataclass(frozen=True)
class SignalEnvelope:
    event_ts: datetime  # aware UTC
    symbol: str
    seq: int
    timeframe: str  # "1Min", "1Sec", ...
    source: str
    price: Decimal | None
    features: Mapping[str, float]
    ingest_ts: datetime | None = None
    feature_schema_version: str = FEATURE_SCHEMA_VERSION

    @property
    def cursor(self) -> SignalCursor:
        return SignalCursor(self.event_ts, self.symbol, self.seq)


@dataclass(frozen=True, order=True)
class SignalCursor:
    """Position in the stream. Ordering is the stream order (event_ts, symbol, seq), so
    `key > cursor` is exactly `event_ts > c OR (event_ts = c AND (symbol > s OR (symbol = s AND
    seq > n)))`. A time-only position uses symbol "" and seq -1 (before every row at that time)."""

    event_ts: datetime
    symbol: str = ""
    seq: int = -1

    @classmethod
    def at(cls, event_ts: datetime) -> SignalCursor:
        """Just before every row at `event_ts`."""
        return cls(event_ts, "", -1)

    @classmethod
    def after_time(cls, event_ts: datetime) -> SignalCursor:
        """Just after every row at `event_ts` (symbol U+10FFFF sorts after any ticker)."""
        return cls(event_ts, MAX_SYMBOL, MAX_SEQ)


@dataclass(frozen=True)
class SignalBatch:
    signals: Sequence[SignalEnvelope]
    cursor_after: SignalCursor | None  # persist this; None = leave the stored cursor unchanged
    no_signal_reason: str | None
    latest_event_ts: datetime | None
    invalid_rows: int = 0
    lag_seconds: float | None = None


@dataclass(frozen=True)
class ParsedRows:
    signals: list[SignalEnvelope] = field(default_factory=list)
    invalid_rows: int = 0
    last_key: SignalCursor | None = None  # stream position of the last row read, valid or not


_TIMEFRAME_UNITS = {"S": "Sec", "M": "Min", "H": "Hour", "D": "Day"}


def timeframe_from_window(window_size: Any) -> str | None:
    """ISO-8601 window sizes ("PT1M", "PT1S", "PT5M", "P1D") -> Alpaca-style "1Min" etc."""
    if not isinstance(window_size, str):
        return None
    match = re.fullmatch(r"P(?:T)?(\d+)([SMHD])", window_size.strip().upper())
    if match is None:
        return None
    return f"{int(match.group(1))}{_TIMEFRAME_UNITS[match.group(2)]}"


def parse_timestamp(value: Any) -> datetime | None:
    """ISO-8601 or ClickHouse ("2026-01-01 00:00:01.500") text, epoch seconds or a datetime ->
    aware UTC. Naive values are UTC. None when unparseable."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return None
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


class _Invalid(Exception):
    pass


def _number(value: Any) -> float | None:
    """A finite float, None when absent; raises _Invalid for non-finite or non-numeric text."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            result = float(value)
        except ValueError as exc:
            raise _Invalid from exc
    elif isinstance(value, bool):
        raise _Invalid
    elif isinstance(value, int | float | Decimal):
        result = float(value)
    else:
        raise _Invalid
    if not math.isfinite(result):
        raise _Invalid
    return result


def _price(value: Any) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise _Invalid
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise _Invalid from exc
    if not price.is_finite():
        raise _Invalid
    return price


def _seq(value: Any) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise _Invalid
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value.strip())
    raise _Invalid


def _payload(value: Any) -> Mapping[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str | bytes):
        try:
            decoded = json.loads(value)
        except ValueError as exc:
            raise _Invalid from exc
        if isinstance(decoded, Mapping):
            return decoded
    raise _Invalid


def row_key(row: Mapping[str, Any]) -> SignalCursor | None:
    """The stream position of a raw row (flat or envelope), or None without time/symbol/seq."""
    ts = parse_timestamp(row.get("event_ts", row.get("ts")))
    symbol = row.get("symbol")
    if ts is None or not isinstance(symbol, str) or not symbol:
        return None
    try:
        seq = _seq(row.get("seq"))
    except _Invalid:
        return None
    return SignalCursor(ts, symbol, seq)


def _features_from_payload(payload: Mapping[str, Any], features: dict[str, float]) -> None:
    for group, keys in _PAYLOAD_GROUPS.items():
        nested = payload.get(group)
        if isinstance(nested, Mapping):
            for sub, key in keys.items():
                value = _number(nested.get(sub))
                if value is not None:
                    features.setdefault(key, value)
    for key, aliases in _FLAT_ALIASES.items():
        for alias in aliases:
            raw = payload.get(alias)
            if isinstance(raw, Mapping):
                continue
            value = _number(raw)
            if value is not None:
                features.setdefault(key, value)
                break


def parse_signal_row(
    row: Mapping[str, Any], *, source: str = "", default_timeframe: str = "1Min"
) -> SignalEnvelope | None:
    """Normalize one flat or envelope row; None if it is invalid (see module docstring)."""
    try:
        return _parse(row, source=source, default_timeframe=default_timeframe)
    except _Invalid:
        return None


def _parse(row: Mapping[str, Any], *, source: str, default_timeframe: str) -> SignalEnvelope | None:
    key = row_key(row)
    if key is None:
        return None
    payload = _payload(row.get("payload"))
    if not payload and row.get("signal_json") not in (None, ""):
        payload = _payload(row.get("signal_json"))
    features: dict[str, float] = {}
    # flat columns first, then the payload fills what the columns lack
    for feature, aliases in _FLAT_ALIASES.items():
        for alias in aliases:
            if alias in row and not isinstance(row[alias], Mapping):
                value = _number(row[alias])
                if value is not None:
                    features[feature] = value
                    break
    _features_from_payload(payload, features)
    if any(name not in features for name in REQUIRED_FEATURES):
        return None

    price = _price(row.get("price"))
    if price is None:
        price = _price(row.get("close"))
    if price is None:
        price = _price(payload.get("price"))
    if price is None:
        price = _price(payload.get("close"))
    if price is None:
        return None

    timeframe = row.get("timeframe") or payload.get("timeframe")
    if not isinstance(timeframe, str) or not timeframe:
        timeframe = timeframe_from_window(row.get("window_size")) or default_timeframe
    ingest_raw = row.get("ingest_ts")
    ingest_ts = parse_timestamp(ingest_raw) if ingest_raw not in (None, "") else None
    row_source = row.get("source")
    version = row.get("feature_schema_version") or payload.get("feature_schema_version")
    ordered = {name: features[name] for name in SIGNAL_FEATURE_KEYS if name in features}
    return SignalEnvelope(
        event_ts=key.event_ts,
        symbol=key.symbol,
        seq=key.seq,
        timeframe=timeframe,
        source=row_source if isinstance(row_source, str) and row_source else source,
        price=price,
        features=ordered,
        ingest_ts=ingest_ts,
        feature_schema_version=version if isinstance(version, str) else FEATURE_SCHEMA_VERSION,
    )


def parse_rows(
    rows: Sequence[Mapping[str, Any]], *, source: str = "", default_timeframe: str = "1Min"
) -> ParsedRows:
    """Normalize rows read in stream order; invalid rows are counted and skipped."""
    signals: list[SignalEnvelope] = []
    invalid = 0
    last_key: SignalCursor | None = None
    for row in rows:
        key = row_key(row)
        if key is not None and (last_key is None or key > last_key):
            last_key = key
        signal = parse_signal_row(row, source=source, default_timeframe=default_timeframe)
        if signal is None:
            invalid += 1
        else:
            signals.append(signal)
    return ParsedRows(signals=signals, invalid_rows=invalid, last_key=last_key)
