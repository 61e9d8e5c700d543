"""evaluate() per row and evaluate_arrays() over the columns agree, for both strategies."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from trading.indicators import compute_features, finite_features
from trading.signals.replay import load_signals
from trading.signals.types import SIGNAL_FEATURE_KEYS, SignalEnvelope
from trading.strategies.registry import get_strategy

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "signals-sample.csv"
ACTION = {"buy": 1, "sell": -1}


def per_row(strategy, signals, params):
    out = []
    for s in signals:
        intent = strategy.evaluate(s, params)
        out.append(ACTION[intent.action] if intent else 0)
    return out


def generated_signals(seed=5, n=6000):
    """A mean-reverting walk with bursts, features from trading.indicators (NaN warm-up
    included, so absent features are exercised too)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    log_price = np.cumsum(rng.normal(0, 0.0015, n)) + 0.02 * np.sin(2 * np.pi * t / 90)
    close = 100.0 * np.exp(log_price)
    features = compute_features(close, volume=rng.integers(1, 1000, n).astype(float))
    start = datetime(2026, 3, 3, 14, 30, tzinfo=UTC)
    signals = [
        SignalEnvelope(
            event_ts=start + timedelta(minutes=i),
            symbol="SYN",
            seq=i,
            timeframe="1Min",
            source="generated",
            price=Decimal(f"{close[i]:.2f}"),
            features=finite_features(features, i),
        )
        for i in range(n)
    ]
    return signals, features


PARAMS: list[dict[str, float]] = [
    {},
    {"buy_rsi_threshold": 45, "sell_rsi_threshold": 55},
    {
        "bullish_hist_min": 0.01,
        "min_bull_rsi": 45,
        "max_bull_rsi": 70,
        "vol_ceil": 0.05,
        "min_bear_rsi": 40,
        "bearish_hist_min": 0.0,
    },
]


@pytest.mark.parametrize("name", ["legacy_macd_rsi", "intraday_tsmom"])
@pytest.mark.parametrize("params", PARAMS)
def test_parity_on_generated_data(name, params):
    strategy = get_strategy(name)
    signals, features = generated_signals()
    rows = per_row(strategy, signals, params)
    arrays = strategy.evaluate_arrays(features, params)
    assert arrays.tolist() == rows
    assert arrays.dtype == np.int8


def test_generated_data_exercises_both_sides():
    signals, features = generated_signals()
    counts = {}
    cases: tuple[tuple[str, dict[str, float]], ...] = (
        ("legacy_macd_rsi", PARAMS[0]),
        ("intraday_tsmom", PARAMS[2]),
    )
    for name, params in cases:
        out = get_strategy(name).evaluate_arrays(features, params)
        counts[name] = (int((out == 1).sum()), int((out == -1).sum()))
    assert counts == {"legacy_macd_rsi": (493, 495), "intraday_tsmom": (262, 31)}


@pytest.mark.parametrize("name", ["legacy_macd_rsi", "intraday_tsmom"])
def test_parity_on_bundled_sample(name):
    strategy = get_strategy(name)
    signals, invalid = load_signals(SAMPLE)
    assert invalid == 0
    columns = {
        key: np.array([s.features.get(key, np.nan) for s in signals]) for key in SIGNAL_FEATURE_KEYS
    }
    assert strategy.evaluate_arrays(columns, {}).tolist() == per_row(strategy, signals, {})
