"""Signals computed locally from Alpaca bars (no ClickHouse / TA pipeline needed).

Each fetch asks the market-data adapter for the last `warmup_minutes` of bars of every symbol,
computes the indicators (`trading.indicators.compute_features`) per symbol and turns each completed
bar into a signal: event_ts = bar open + timeframe (the bar's close time; bars that close after
`now` are still forming and are left out), seq = bar open time in epoch seconds, price = close,
feature `volume` = the bar's volume.
Bars whose warm-up is too short to give RSI14 are invalid rows. The shared cursor rules apply.
"""

from __future__ import annotations

import importlib
import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol, cast

import numpy as np

from trading.indicators import compute_features, finite_features
from trading.marketdata import Bar
from trading.signals.base import CursorRules, CursorSignalSource, require_aware
from trading.signals.session import session_key
from trading.signals.types import (
    REQUIRED_FEATURES,
    SIGNAL_FEATURE_KEYS,
    ParsedRows,
    SignalCursor,
    SignalEnvelope,
)

SOURCE_NAME = "alpaca"
_TIMEFRAME = re.compile(r"^(\d+)(Sec|Min|Hour|Day)$")
_UNIT_SECONDS = {"Sec": 1, "Min": 60, "Hour": 3600, "Day": 86400}


class BarsProvider(Protocol):
    def get_bars(
        self, symbols: Sequence[str], start: datetime, end: datetime, timeframe: str
    ) -> list[Bar]: ...


def timeframe_seconds(timeframe: str) -> int:
    match = _TIMEFRAME.match(timeframe)
    if match is None:
        raise ValueError(f"unsupported timeframe {timeframe!r} (expected e.g. 1Min, 5Min, 1Hour)")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def signals_from_bars(
    bars: Sequence[Bar], *, timeframe: str
) -> list[tuple[SignalCursor, SignalEnvelope | None]]:
    """(position, signal or None when invalid) for every bar, sorted by position."""
    step = timedelta(seconds=timeframe_seconds(timeframe))
    by_symbol: dict[str, list[Bar]] = defaultdict(list)
    for bar in bars:
        by_symbol[bar.symbol].append(bar)
    out: list[tuple[SignalCursor, SignalEnvelope | None]] = []
    for symbol, series in by_symbol.items():
        unique = {bar.timestamp: bar for bar in series}  # a re-sent bar replaces the earlier copy
        ordered = [unique[ts] for ts in sorted(unique)]
        close = np.array([float(bar.close) for bar in ordered], dtype=np.float64)
        volume = np.array([float(bar.volume) for bar in ordered], dtype=np.float64)
        sessions = np.array([session_key(bar.timestamp) for bar in ordered], dtype=np.int64)
        features = compute_features(close, volume=volume, session=sessions)
        for index, bar in enumerate(ordered):
            event_ts = bar.timestamp + step
            key = SignalCursor(event_ts, symbol, int(bar.timestamp.timestamp()))
            row = finite_features(features, index)
            signal: SignalEnvelope | None = None
            if all(name in row for name in REQUIRED_FEATURES) and bar.close.is_finite():
                signal = SignalEnvelope(
                    event_ts=event_ts,
                    symbol=symbol,
                    seq=key.seq,
                    timeframe=timeframe,
                    source=SOURCE_NAME,
                    price=Decimal(bar.close),
                    features={k: row[k] for k in SIGNAL_FEATURE_KEYS if k in row}
                    | ({"volume": float(bar.volume)} if bar.volume.is_finite() else {}),
                    ingest_ts=None,
                )
            out.append((key, signal))
    out.sort(key=lambda item: item[0])
    return out


class AlpacaBarsSignalSource(CursorSignalSource):
    def __init__(
        self,
        market_data: BarsProvider,
        symbols: Sequence[str],
        *,
        timeframe: str = "1Min",
        warmup_minutes: int = 180,
        rules: CursorRules | None = None,
    ) -> None:
        super().__init__(rules=rules)
        timeframe_seconds(timeframe)  # validate early
        self.market_data = market_data
        self.symbols = tuple(dict.fromkeys(s.upper() for s in symbols))
        self.timeframe = timeframe
        self.warmup = timedelta(minutes=warmup_minutes)
        self._loaded: tuple[datetime, list[tuple[SignalCursor, SignalEnvelope | None]]] | None = (
            None
        )

    @classmethod
    def from_settings(cls, market_data: BarsProvider | None = None) -> AlpacaBarsSignalSource:
        """Symbols from TRADING_STATIC_SYMBOLS. Without `market_data`, the Alpaca adapter's
        `AlpacaMarketData.from_settings()` (looked up at call time: the adapter module is optional
        for every other source)."""
        from django.conf import settings

        if market_data is None:
            adapter = importlib.import_module("trading.brokers.alpaca")
            market_data = cast(BarsProvider, adapter.AlpacaMarketData.from_settings())
        return cls(
            market_data,
            settings.TRADING_STATIC_SYMBOLS,
            rules=CursorRules.from_values(
                lookback_minutes=settings.TRADING_SIGNAL_LOOKBACK_MINUTES,
                empty_batch_advance_seconds=settings.TRADING_SIGNAL_EMPTY_BATCH_ADVANCE_SECONDS,
            ),
        )

    def _rows(self, now: datetime) -> list[tuple[SignalCursor, SignalEnvelope | None]]:
        """Completed bars as positions/signals, loaded once per `now` (one get_bars call)."""
        if self._loaded is not None and self._loaded[0] == now:
            return self._loaded[1]
        if not self.symbols:
            rows: list[tuple[SignalCursor, SignalEnvelope | None]] = []
        else:
            start = now - self.rules.lookback - self.warmup
            bars = self.market_data.get_bars(list(self.symbols), start, now, self.timeframe)
            rows = [
                item
                for item in signals_from_bars(bars, timeframe=self.timeframe)
                if item[0].event_ts <= now
            ]
        self._loaded = (now, rows)
        return rows

    def latest_event_ts(self, now: datetime) -> datetime | None:
        rows = self._rows(require_aware(now))
        return rows[-1][0].event_ts if rows else None

    def read_after(self, start: SignalCursor, *, limit: int, now: datetime) -> ParsedRows:
        signals: list[SignalEnvelope] = []
        invalid = 0
        last_key: SignalCursor | None = None
        for key, signal in self._rows(now):
            if key <= start:
                continue
            if len(signals) + invalid >= limit:
                break
            last_key = key
            if signal is None:
                invalid += 1
            else:
                signals.append(signal)
        return ParsedRows(signals=signals, invalid_rows=invalid, last_key=last_key)
