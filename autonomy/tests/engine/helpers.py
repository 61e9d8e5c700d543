"""Shared test data for the engine tests: deterministic bars and signal rows."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from autonomy.engine.data import BarFrame
from trading.indicators import compute_features, finite_features

START = datetime(2026, 3, 3, 14, 30, tzinfo=UTC)
MINUTE_NS = 60_000_000_000
START_NS = int(START.timestamp()) * 1_000_000_000

# loosened thresholds so generated data produces many buys and sells for both strategies
LEGACY_LOOSE = {"buy_rsi_threshold": 45, "sell_rsi_threshold": 55}
TSMOM_LOOSE = {
    "bullish_hist_min": 0.01,
    "min_bull_rsi": 45,
    "max_bull_rsi": 70,
    "vol_ceil": 0.05,
    "min_bear_rsi": 40,
    "bearish_hist_min": 0.0,
}


def closes(n: int, seed: int, start: float = 100.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    log_price = np.cumsum(rng.normal(0, 0.0015, n)) + 0.02 * np.sin(2 * np.pi * t / 90)
    return np.round(start * np.exp(log_price), 2)


def signal_rows(symbols: Mapping[str, int], n: int) -> list[dict[str, Any]]:
    """Flat signal rows (as ClickHouse `ta_signals` returns them) for several symbols, one row per
    symbol per minute, features from `trading.indicators`, in stream order."""
    rows: list[dict[str, Any]] = []
    per_symbol = {}
    for symbol, seed in symbols.items():
        close = closes(n, seed, start=50.0 + 10 * seed)
        per_symbol[symbol] = (close, compute_features(close))
    for i in range(n):
        for symbol in sorted(symbols):
            close, features = per_symbol[symbol]
            row: dict[str, Any] = {
                "event_ts": (START + timedelta(minutes=i)).isoformat(),
                "symbol": symbol,
                "seq": i,
                "timeframe": "1Min",
                "price": f"{close[i]:.2f}",
            }
            row.update(finite_features(features, i))
            rows.append(row)
    return rows


class ScriptedStrategy:
    """A strategy whose action per row is the frame's `act` feature (for exact hand checks)."""

    name = "scripted"
    version = "0.0.0"

    def evaluate(self, signal, params):  # pragma: no cover - the backtest path only
        raise NotImplementedError

    def evaluate_arrays(self, features, params):
        return np.asarray(features["act"], dtype=np.int8)


def scripted_frame(prices, actions, *, symbols=None, ts=None) -> BarFrame:
    n = len(prices)
    codes = np.zeros(n, dtype=np.int32) if symbols is None else np.asarray(symbols, np.int32)
    names = ("AAA",) if symbols is None else tuple(f"S{i}" for i in range(int(codes.max()) + 1))
    return BarFrame(
        ts=np.asarray(ts if ts is not None else START_NS + np.arange(n) * MINUTE_NS, np.int64),
        symbol=codes,
        symbols=names,
        seq=np.zeros(n, dtype=np.int64),
        price=np.asarray(prices, dtype=np.float64),
        features={"act": np.asarray(actions, dtype=np.float64)},
    )
