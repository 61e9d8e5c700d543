"""Compiled (numba) kernels for `trading.indicators`: the exponential recursions bar by bar.

Each kernel evaluates the recursion exactly as the live `trading.indicators.IndicatorState` does,
in the same order with the same operations, so the whole-array values are bit-for-bit the
streaming ones (tested in trading/tests/signals/test_kernels.py against plain Python loops).

Compiled with `trading.jit.kernel` (strict IEEE arithmetic, numpy's error model, an on-disk
cache: see trading/jit.py for where it lives and what compiling costs). Importing numba costs
about half a second, so `trading.indicators` imports this module on first use, not at import
(live processes that only read `FEATURE_KEYS` never pay it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trading.jit import kernel

FloatArray = Any  # numba dispatchers are untyped for mypy; callers annotate the results


@kernel
def ema_into(x: FloatArray, alpha: float, out: FloatArray) -> None:  # pragma: no cover - compiled
    """out[0] = x[0]; out[t] = alpha * x[t] + (1 - alpha) * out[t-1]."""
    n = x.shape[0]
    if n == 0:
        return
    keep = 1.0 - alpha
    acc = x[0]
    out[0] = acc
    for t in range(1, n):
        acc = alpha * x[t] + keep * acc
        out[t] = acc


@kernel
def macd_rsi_into(
    x: FloatArray,
    fast_alpha: float,
    slow_alpha: float,
    signal_alpha: float,
    ema_fast: FloatArray,
    ema_slow: FloatArray,
    line: FloatArray,
    signal: FloatArray,
    hist: FloatArray,
    period: int,
    rsi: FloatArray,
) -> None:  # pragma: no cover - compiled
    """MACD and Wilder RSI in one pass (their recursions overlap in the CPU). An output whose
    length is not len(x) (pass an empty array) is not wanted: it is neither computed nor written.

    MACD: EMA fast/slow (seeded with x[0]), their difference, its EMA seeded with the first
    difference, the histogram. RSI(period): NaN before `period`; the seed average is the running
    sum of the first `period` gains (losses) divided by `period`, then avg = a * avg + g / period
    with a = (period-1)/period; RSI 100 - 100 / (1 + gain/loss), 100 when only the loss average
    is 0, 50 when both are. Gains and losses are Python's max(d, 0.0), max(-d, 0.0).
    """
    n = x.shape[0]
    want_fast, want_slow = ema_fast.shape[0] == n, ema_slow.shape[0] == n
    want_line, want_signal, want_hist = line.shape[0] == n, signal.shape[0] == n, hist.shape[0] == n
    want_macd = want_fast or want_slow or want_line or want_signal or want_hist
    want_rsi = rsi.shape[0] == n
    keep_fast, keep_slow, keep_signal = 1.0 - fast_alpha, 1.0 - slow_alpha, 1.0 - signal_alpha
    a = (period - 1) / period
    fast = slow = sig = 0.0
    gain_sum = loss_sum = avg_gain = avg_loss = 0.0
    for t in range(n):
        v = x[t]
        if want_macd:
            if t == 0:
                fast = v
                slow = v
                sig = fast - slow
            else:
                fast = fast_alpha * v + keep_fast * fast
                slow = slow_alpha * v + keep_slow * slow
                sig = signal_alpha * (fast - slow) + keep_signal * sig
            diff = fast - slow
            if want_fast:
                ema_fast[t] = fast
            if want_slow:
                ema_slow[t] = slow
            if want_line:
                line[t] = diff
            if want_signal:
                signal[t] = sig
            if want_hist:
                hist[t] = diff - sig
        if not want_rsi:
            continue
        if t < period:
            rsi[t] = np.nan
        if t == 0:
            continue
        d = v - x[t - 1]
        gain = 0.0 if 0.0 > d else d
        loss = 0.0 if 0.0 > -d else -d
        if t < period:
            gain_sum += gain
            loss_sum += loss
            continue
        if t == period:
            avg_gain = (gain_sum + gain) / period
            avg_loss = (loss_sum + loss) / period
        else:
            avg_gain = a * avg_gain + gain / period
            avg_loss = a * avg_loss + loss / period
        if avg_loss == 0.0:
            rsi[t] = 50.0 if avg_gain == 0.0 else 100.0
        else:
            rsi[t] = 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
