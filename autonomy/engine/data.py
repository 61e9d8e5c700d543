"""A columnar frame of bars/signals for the backtester: numpy arrays in stream order.

Rows are in the order the live signal sources deliver them, (event_ts, symbol, seq), so replaying
the frame row by row is replaying the live feed. A frame is built either

- from signal rows (`frame_from_rows` / `frame_from_signals`): the same dict rows the live
  sources read, normalised by `trading.signals.types.parse_rows`, so the backtester sees exactly
  the features and price the live strategy sees (absent features are NaN, which every strategy
  comparison treats as False, as the live path treats an absent feature); or
- from bars (`frame_from_bars`): closes per symbol, with the features computed by
  `trading.indicators` (the same definitions as the live `IndicatorState`). Such a frame is
  `derived`, so a stress case that changes the price path can recompute its features.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from trading import indicators
from trading.signals.types import SIGNAL_FEATURE_KEYS, SignalEnvelope, parse_rows

FloatArray = npt.NDArray[np.float64]
Int64Array = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NS_PER_US = 1000

MACD_KEYS = frozenset({"macd", "macd_signal", "macd_hist", "ema12", "ema26"})
BOLL_KEYS = frozenset({"boll_mid", "boll_upper", "boll_lower"})
VWAP_KEYS = frozenset({"vwap_session", "vwap_w5m"})


def datetime_to_ns(value: datetime) -> int:
    """Aware datetime -> integer nanoseconds since the epoch (exact to the microsecond)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: event times are aware UTC")
    return ((value - EPOCH) // timedelta(microseconds=1)) * NS_PER_US


def ns_to_datetime(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(value) // NS_PER_US)


@dataclass(frozen=True)
class BarFrame:
    """Columns of equal length n, sorted by (ts, symbol, seq).

    `symbol` holds codes into `symbols`, which is sorted, so code order is name order.
    `features` maps a feature key (as in `SignalEnvelope.features`) to a float64 column.
    `derived`: the features were computed from `price` (see module doc).
    """

    ts: Int64Array
    symbol: Int32Array
    symbols: tuple[str, ...]
    seq: Int64Array
    price: FloatArray
    features: Mapping[str, FloatArray]
    timeframe: str = "1Min"
    derived: bool = False
    volume: FloatArray | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.ts.shape[0]
        columns: dict[str, npt.NDArray[Any]] = {
            "symbol": self.symbol,
            "seq": self.seq,
            "price": self.price,
            **self.features,
        }
        if self.volume is not None:
            columns["volume"] = self.volume
        for name, column in columns.items():
            if column.shape != (n,):
                raise ValueError(f"column {name!r} has shape {column.shape}, expected ({n},)")

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def take(self, index: npt.NDArray[np.intp] | slice) -> BarFrame:
        """The rows at `index` (a slice or increasing indices), as a new frame."""
        return replace(
            self,
            ts=self.ts[index],
            symbol=self.symbol[index],
            seq=self.seq[index],
            price=self.price[index],
            features={key: values[index] for key, values in self.features.items()},
            volume=None if self.volume is None else self.volume[index],
        )

    def slice(self, start: int, stop: int) -> BarFrame:
        return self.take(slice(start, stop))

    def symbol_rows(self) -> list[tuple[int, npt.NDArray[np.intp]]]:
        """(code, row indices in stream order) for every symbol present."""
        if len(self.symbols) == 1:
            return [(0, np.arange(len(self), dtype=np.intp))]
        return [
            (code, rows)
            for code in range(len(self.symbols))
            if (rows := np.flatnonzero(self.symbol == code)).shape[0]
        ]

    def with_price(self, price: FloatArray, *, recompute: bool = True) -> BarFrame:
        """The same rows with another price path; a derived frame's features follow it."""
        features: Mapping[str, FloatArray] = self.features
        if recompute and self.derived:
            features = _features_per_symbol(
                self, price, keys=tuple(self.features), volume=self.volume
            )
        return replace(self, price=np.asarray(price, dtype=np.float64), features=features)


def _stream_order(ts: Int64Array, symbol: Int32Array, seq: Int64Array) -> npt.NDArray[np.intp]:
    return np.lexsort((seq, symbol, ts))


def _is_sorted(ts: Int64Array, symbol: Int32Array, seq: Int64Array) -> bool:
    """Every row (ts, symbol, seq) >= the row before (so the stable `_stream_order` is the
    identity), in one linear pass instead of a sort."""
    if ts.shape[0] < 2:
        return True
    t0, t1 = ts[:-1], ts[1:]
    if bool((t1 > t0).all()):  # strictly increasing times: the common single-symbol case
        return True
    s0, s1 = symbol[:-1], symbol[1:]
    same_ts, same_symbol = t1 == t0, s1 == s0
    ordered = (t1 > t0) | (same_ts & (s1 > s0)) | (same_ts & same_symbol & (seq[1:] >= seq[:-1]))
    return bool(ordered.all())


def frame_from_signals(
    signals: Sequence[SignalEnvelope], *, timeframe: str | None = None
) -> BarFrame:
    """A frame of parsed signals (only those of `timeframe` when given, as a live strategy only
    sees its `base_timeframe`). The default timeframe is the first signal's."""
    if timeframe is not None:
        signals = [s for s in signals if s.timeframe == timeframe]
    names = tuple(sorted({s.symbol for s in signals}))
    codes = {name: i for i, name in enumerate(names)}
    n = len(signals)
    ts = np.fromiter((datetime_to_ns(s.event_ts) for s in signals), dtype=np.int64, count=n)
    symbol = np.fromiter((codes[s.symbol] for s in signals), dtype=np.int32, count=n)
    seq = np.fromiter((s.seq for s in signals), dtype=np.int64, count=n)
    price = np.fromiter(
        (float(s.price) if s.price is not None else np.nan for s in signals),
        dtype=np.float64,
        count=n,
    )
    present = [key for key in SIGNAL_FEATURE_KEYS if any(key in s.features for s in signals)]
    features = {
        key: np.fromiter((s.features.get(key, np.nan) for s in signals), dtype=np.float64, count=n)
        for key in present
    }
    order = _stream_order(ts, symbol, seq)
    frame = BarFrame(
        ts=ts,
        symbol=symbol,
        symbols=names,
        seq=seq,
        price=price,
        features=features,
        timeframe=timeframe or (signals[0].timeframe if signals else "1Min"),
    )
    return frame if _is_sorted(ts, symbol, seq) else frame.take(order)


@dataclass(frozen=True)
class ParsedFrame:
    frame: BarFrame
    signals: list[SignalEnvelope]  # the valid rows in stream order, as the live path sees them
    invalid_rows: int


def frame_from_rows(
    rows: Sequence[Mapping[str, Any]],
    *,
    source: str = "",
    default_timeframe: str = "1Min",
    timeframe: str | None = None,
) -> ParsedFrame:
    """Normalise raw signal rows (flat or envelope) with the live parser, then build the frame."""
    parsed = parse_rows(rows, source=source, default_timeframe=default_timeframe)
    signals = sorted(parsed.signals, key=lambda s: (s.event_ts, s.symbol, s.seq))
    if timeframe is not None:
        signals = [s for s in signals if s.timeframe == timeframe]
    return ParsedFrame(
        frame=frame_from_signals(signals, timeframe=timeframe),
        signals=signals,
        invalid_rows=parsed.invalid_rows,
    )


def compute_indicators(
    close: npt.ArrayLike,
    *,
    keys: Collection[str] | None = None,
    volume: npt.ArrayLike | None = None,
    session: npt.ArrayLike | None = None,
) -> dict[str, FloatArray]:
    """The requested features of one symbol's closes (all of them by default), computed by
    `trading.indicators`; only the indicator families a key needs are evaluated."""
    c = np.asarray(close, dtype=np.float64)
    if keys is None:
        return indicators.compute_features(c, volume=volume, session=session)
    wanted = set(keys)
    unknown = wanted - set(indicators.FEATURE_KEYS)
    if unknown:
        raise ValueError(f"unknown feature keys: {sorted(unknown)}")
    out: dict[str, FloatArray] = {}
    if wanted & (MACD_KEYS | {"rsi14"}):  # one compiled pass for both families
        out.update(indicators.macd_rsi_columns(c, wanted & (MACD_KEYS | {"rsi14"})))
    if wanted & BOLL_KEYS:
        b = indicators.bollinger(c)
        columns = {"boll_mid": b.mid, "boll_upper": b.upper, "boll_lower": b.lower}
        out.update({k: v for k, v in columns.items() if k in wanted})
    if "vol_realized_w60s" in wanted:
        out["vol_realized_w60s"] = indicators.realized_volatility(c)
    if wanted & VWAP_KEYS:
        if volume is None:
            raise ValueError("VWAP features need volume")
        v = np.asarray(volume, dtype=np.float64)
        if "vwap_session" in wanted:
            keys_arr = np.zeros(c.shape[0], dtype=np.int64) if session is None else session
            out["vwap_session"] = indicators.session_vwap(c, v, keys_arr)
        if "vwap_w5m" in wanted:
            out["vwap_w5m"] = indicators.rolling_vwap(c, v)
    return {key: out[key] for key in indicators.FEATURE_KEYS if key in out}


def _features_per_symbol(
    frame: BarFrame,
    price: FloatArray,
    *,
    keys: Collection[str] | None,
    volume: FloatArray | None,
) -> dict[str, FloatArray]:
    n = len(frame)
    columns: dict[str, FloatArray] = {}
    for _, rows in frame.symbol_rows():
        single = rows.shape[0] == n
        computed = compute_indicators(
            price if single else price[rows],
            keys=keys,
            volume=None if volume is None else (volume if single else volume[rows]),
        )
        for key, values in computed.items():
            if single:
                columns[key] = values
            else:
                columns.setdefault(key, np.full(n, np.nan))[rows] = values
    return columns


def frame_from_bars(
    ts: npt.NDArray[np.int64] | Sequence[int] | Sequence[datetime],
    close: npt.ArrayLike,
    *,
    symbol: str | Sequence[str] = "SYN",
    volume: npt.ArrayLike | None = None,
    keys: Collection[str] | None = None,
    timeframe: str = "1Min",
) -> BarFrame:
    """A derived frame from bar closes: `ts` as epoch ns (int64) or aware datetimes, one symbol
    name or one per bar; features computed per symbol over its own bars in time order."""
    ts_arr = (
        np.asarray(
            [datetime_to_ns(t) if isinstance(t, datetime) else int(t) for t in ts], dtype=np.int64
        )
        if not isinstance(ts, np.ndarray)
        else ts.astype(np.int64, copy=False)
    )
    n = ts_arr.shape[0]
    price = np.asarray(close, dtype=np.float64)
    if isinstance(symbol, str):
        names: tuple[str, ...] = (symbol,)
        codes = np.zeros(n, dtype=np.int32)
    else:
        names = tuple(sorted(set(symbol)))
        lookup = {name: i for i, name in enumerate(names)}
        codes = np.fromiter((lookup[s] for s in symbol), dtype=np.int32, count=n)
    vol = None if volume is None else np.asarray(volume, dtype=np.float64)
    seq = np.zeros(n, dtype=np.int64)
    frame = BarFrame(
        ts=ts_arr,
        symbol=codes,
        symbols=names,
        seq=seq,
        price=price,
        features={},
        timeframe=timeframe,
        derived=True,
        volume=vol,
    )
    if not _is_sorted(ts_arr, codes, seq):
        frame = frame.take(_stream_order(ts_arr, codes, seq))
    features = _features_per_symbol(frame, frame.price, keys=keys, volume=frame.volume)
    return replace(frame, features=features)


def map_symbols(frame: BarFrame, fn: Callable[[FloatArray], FloatArray]) -> FloatArray:
    """Apply `fn` to each symbol's price series (in time order); returns the new price column."""
    out = np.empty(len(frame), dtype=np.float64)
    for _, rows in frame.symbol_rows():
        out[rows] = fn(frame.price[rows])
    return out
