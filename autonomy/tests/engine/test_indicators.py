"""The engine's features are trading.indicators' and match a plain loop reference."""

import math

import numpy as np
import pytest

from autonomy.engine.data import compute_indicators, frame_from_bars
from trading.indicators import IndicatorState, compute_features

from .helpers import MINUTE_NS, START_NS, closes


def ema_loop(x, period):
    a = 2.0 / (period + 1)
    out = [x[0]]
    for v in x[1:]:
        out.append(a * v + (1 - a) * out[-1])
    return np.array(out)


def rsi_loop(x, period=14):
    out = [math.nan] * len(x)
    gains = losses = 0.0
    avg_g = avg_l = 0.0
    for t in range(1, len(x)):
        d = x[t] - x[t - 1]
        g, loss = max(d, 0.0), max(-d, 0.0)
        if t < period:
            gains += g
            losses += loss
            continue
        if t == period:
            avg_g, avg_l = (gains + g) / period, (losses + loss) / period
        else:
            avg_g = (avg_g * (period - 1) + g) / period
            avg_l = (avg_l * (period - 1) + loss) / period
        if avg_l == 0:
            out[t] = 50.0 if avg_g == 0 else 100.0
        else:
            out[t] = 100 - 100 / (1 + avg_g / avg_l)
    return np.array(out)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_macd_rsi_match_loop_reference(seed):
    x = closes(5000, seed)
    got = compute_indicators(x, keys=("macd", "macd_signal", "rsi14", "ema12", "ema26"))
    ema12, ema26 = ema_loop(x, 12), ema_loop(x, 26)
    macd = ema12 - ema26
    signal = ema_loop(macd, 9)
    np.testing.assert_allclose(got["ema12"], ema12, rtol=1e-12)
    np.testing.assert_allclose(got["ema26"], ema26, rtol=1e-12)
    np.testing.assert_allclose(got["macd"], macd, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(got["macd_signal"], signal, rtol=1e-9, atol=1e-10)
    rsi = rsi_loop(x)
    assert np.isnan(got["rsi14"][:14]).all()
    np.testing.assert_allclose(got["rsi14"][14:], rsi[14:], rtol=1e-10)


def test_selected_keys_equal_the_full_feature_set():
    x = closes(3000, 4)
    volume = np.arange(3000, dtype=np.float64) % 97 + 1
    full = compute_features(x, volume=volume)
    subset = compute_indicators(x, keys=tuple(full), volume=volume)
    assert sorted(subset) == sorted(full)
    for key, values in full.items():
        np.testing.assert_array_equal(subset[key], values)
    assert list(compute_indicators(x, keys=("rsi14", "macd"))) == ["macd", "rsi14"]
    with pytest.raises(ValueError, match="unknown feature keys"):
        compute_indicators(x, keys=("nope",))


def test_frame_features_match_the_live_streaming_state():
    x = closes(400, 7)
    frame = frame_from_bars(START_NS + np.arange(400) * MINUTE_NS, x, symbol="AAPL")
    state = IndicatorState()
    for i, close in enumerate(x):
        live = state.update(float(close))
        for key in ("macd", "macd_signal", "rsi14", "ema12", "ema26", "vol_realized_w60s"):
            if key in live:
                assert frame.features[key][i] == pytest.approx(live[key], rel=1e-9, abs=1e-12)
            else:
                assert math.isnan(frame.features[key][i])


def test_multi_symbol_bars_get_per_symbol_features():
    a, b = closes(300, 1), closes(300, 2, start=50.0)
    ts = np.repeat(START_NS + np.arange(300) * MINUTE_NS, 2)
    price = np.empty(600)
    price[0::2], price[1::2] = b, a  # rows given out of symbol order on purpose
    symbols = ["MSFT", "AAPL"] * 300
    frame = frame_from_bars(ts, price, symbol=symbols, keys=("macd", "rsi14"))
    assert frame.symbols == ("AAPL", "MSFT")
    assert frame.symbol[:4].tolist() == [0, 1, 0, 1]
    np.testing.assert_array_equal(frame.price[0::2], a)
    np.testing.assert_array_equal(frame.features["rsi14"][1::2], compute_indicators(b)["rsi14"])
    np.testing.assert_array_equal(frame.features["macd"][0::2], compute_indicators(a)["macd"])
