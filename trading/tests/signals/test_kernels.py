"""The compiled indicator kernels (trading.kernels, through trading.indicators) equal plain Python
loops of the definitions bit for bit, and equal the live streaming state bit for bit."""

import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading import indicators as ind
from trading.jit import numba_cache_dir

ROOT = Path(__file__).resolve().parents[3]


def ema_loop(x, period):
    alpha = 2.0 / (period + 1)
    out, acc = [], 0.0
    for i, v in enumerate(x):
        acc = v if i == 0 else alpha * v + (1.0 - alpha) * acc
        out.append(acc)
    return out


def rsi_loop(x, period):
    out = [math.nan] * len(x)
    gain_sum = loss_sum = avg_gain = avg_loss = 0.0
    a = (period - 1) / period
    for t in range(1, len(x)):
        d = x[t] - x[t - 1]
        gain, loss = max(d, 0.0), max(-d, 0.0)
        if t < period:
            gain_sum += gain
            loss_sum += loss
            continue
        if t == period:
            avg_gain, avg_loss = (gain_sum + gain) / period, (loss_sum + loss) / period
        else:
            avg_gain, avg_loss = a * avg_gain + gain / period, a * avg_loss + loss / period
        out[t] = ind.rsi_value(avg_gain, avg_loss)
    return out


def bits(values):
    return np.asarray(values, dtype=np.float64).tobytes()


def walk(seed, n):
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 0.002, n) * rng.choice([0.0, 1.0, 5.0], n, p=[0.1, 0.8, 0.1])
    return np.round(100.0 * np.exp(np.cumsum(steps)), 2)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("period", [1, 2, 9, 12, 26])
def test_ema_kernel_equals_the_loop_bit_for_bit(seed, period):
    x = walk(seed, 3000)
    assert bits(ind.ema(x, period)) == bits(ema_loop(x.tolist(), period))


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("period", [2, 5, 14])
def test_rsi_kernel_equals_the_loop_bit_for_bit(seed, period):
    x = walk(seed, 3000)  # flat stretches (0-steps) give zero gains and losses
    got = ind.rsi(x, period)
    assert bits(got) == bits(rsi_loop(x.tolist(), period))
    assert np.isnan(got[:period]).all() and not np.isnan(got[period:]).any()


def test_macd_kernel_equals_the_loop_bit_for_bit():
    x = walk(4, 5000).tolist()
    m = ind.macd(x)
    fast, slow = ema_loop(x, 12), ema_loop(x, 26)
    line = [f - s for f, s in zip(fast, slow, strict=True)]
    signal = ema_loop(line, 9)
    assert bits(m.ema_fast) == bits(fast)
    assert bits(m.ema_slow) == bits(slow)
    assert bits(m.macd) == bits(line)
    assert bits(m.signal) == bits(signal)
    assert bits(m.hist) == bits([a - b for a, b in zip(line, signal, strict=True)])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False),
        min_size=0,
        max_size=60,
    )
)
def test_kernels_equal_the_loops_on_any_prices(prices):
    m = ind.macd(prices)
    assert bits(m.ema_fast) == bits(ema_loop(prices, 12))
    assert bits(m.ema_slow) == bits(ema_loop(prices, 26))
    assert bits(ind.rsi(prices)) == bits(rsi_loop(prices, 14))


def test_vectorized_macd_and_rsi_equal_the_live_state_bit_for_bit():
    x = walk(5, 4000)
    features = ind.compute_features(x)
    state = ind.IndicatorState()
    keys = ("macd", "macd_signal", "macd_hist", "ema12", "ema26", "rsi14")
    for i, close in enumerate(x.tolist()):
        live = state.update(close)
        for key in keys:
            if key in live:
                assert bits([live[key]]) == bits([features[key][i]]), (key, i)
            else:
                assert math.isnan(features[key][i]), (key, i)


def test_kernels_accept_non_contiguous_input_and_reject_bad_periods():
    x = walk(6, 400)
    assert bits(ind.ema(x[::2], 12)) == bits(ema_loop(x[::2].tolist(), 12))
    assert bits(ind.rsi(x[::2])) == bits(rsi_loop(x[::2].tolist(), 14))
    assert ind.rsi([]).shape == (0,)
    assert np.isnan(ind.rsi([1.0, 2.0])).all()
    with pytest.raises(ValueError, match="RSI period must be >= 1"):
        ind.rsi(x, 0)


def test_numba_cache_dir_only_when_the_source_tree_is_read_only(tmp_path):
    assert numba_cache_dir({}, source_writable=True) is None  # numba's __pycache__ default
    chosen = numba_cache_dir({}, source_writable=False)
    assert chosen == str(Path(tempfile.gettempdir()) / "torghut-numba")
    assert numba_cache_dir({"NUMBA_CACHE_DIR": str(tmp_path)}, source_writable=False) is None


def test_kernels_cache_where_numba_cache_dir_says_and_load_lazily(tmp_path):
    """A fresh process: loading Django and the URL tree (which imports the engine) does not import
    numba; the first indicator call compiles into NUMBA_CACHE_DIR; values are unchanged."""
    code = (
        "import sys, django; django.setup(); import torghut_site.urls\n"
        "assert 'numba' not in sys.modules, 'numba imported at start-up'\n"
        "from trading import indicators\n"
        "print(indicators.ema([1.0, 2.0, 3.0, 4.0], 3).tolist())\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == "[1.0, 1.5, 2.25, 3.125]"
    cached = sorted(p.name for p in tmp_path.rglob("*.nbi"))
    assert cached and all("kernels." in name for name in cached)
