"""Technical indicators over float64 arrays, plus a bar-by-bar streaming form with the same values.

Definitions (the vectorized functions and `IndicatorState` implement exactly these):

- EMA(period): alpha = 2 / (period + 1); ema[0] = x[0];
  ema[t] = alpha * x[t] + (1 - alpha) * ema[t-1].
- MACD(12, 26, 9): macd = EMA12 - EMA26; signal = EMA9(macd) seeded with macd[0];
  hist = macd - signal.
- RSI(14, Wilder): changes d[t] = x[t] - x[t-1]; the first average gain/loss (at t = 14) is the
  simple mean of d[1..14]'s gains/losses, then avg[t] = (13 * avg[t-1] + g[t]) / 14.
  RSI = 100 - 100 / (1 + RS) with RS = avg_gain / avg_loss; 100 when avg_loss = 0 < avg_gain,
  50 when both are 0. NaN for t < 14.
- Bollinger(20, 2): mid = SMA20; upper/lower = mid +/- 2 * population std (ddof = 0) of the same
  20 values. NaN for t < 19.
- Realized volatility(window): sqrt of the sum of the last `window` squared log returns
  ln(x[t] / x[t-1]). NaN for t < window.
- Session VWAP: cumulative sum(price * volume) / cumulative sum(volume) since the first bar of the
  bar's session (a session is a run of equal session keys); the price itself while the session's
  volume is still 0. Rolling VWAP(window) is the same over the last `window` bars.

The exponential recursions (EMA, MACD, RSI) run bar by bar in compiled kernels
(`trading.kernels`, numba) with the same operations in the same order as `IndicatorState`, so the
vectorized EMA/MACD/RSI columns equal the streaming values bit for bit. The windowed features
(Bollinger, realized volatility, VWAP) are numpy window sums and agree with the streaming state to
a few units in the last place (tests hold them to 1e-12 relative).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MACD_FAST = 12
MACD_SLOW = 26
MACD_SIGNAL = 9
RSI_PERIOD = 14
BOLL_PERIOD = 20
BOLL_K = 2.0
# For 1-minute bars the "w60s" realized-vol feature uses the last 5 one-minute returns: a 60-second
# window holds no complete 1-minute return, and 5 bars keeps the value in the 0.001-0.012 band the
# intraday_tsmom gate was tuned for. Callers with 1-second bars pass window=60.
VOL_WINDOW = 5
VWAP_WINDOW = 5

FEATURE_KEYS = (
    "macd",
    "macd_signal",
    "macd_hist",
    "rsi14",
    "ema12",
    "ema26",
    "vwap_session",
    "vwap_w5m",
    "boll_mid",
    "boll_upper",
    "boll_lower",
    "vol_realized_w60s",
)


def _as_float_array(x: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D array, got shape {arr.shape}")
    return arr


def _kernels() -> ModuleType:
    """`trading.kernels`, imported on first use (importing numba takes about half a second)."""
    from trading import kernels

    return kernels


def ema_alpha(period: int) -> float:
    if period < 1:
        raise ValueError(f"EMA period must be >= 1, got {period}")
    return 2.0 / (period + 1)


def ema(x: npt.ArrayLike, period: int) -> FloatArray:
    """EMA seeded with the first value (see module docstring)."""
    arr = _as_float_array(x)
    if arr.shape[0] == 0:
        return arr.copy()
    alpha = ema_alpha(period)
    arr = np.ascontiguousarray(arr)
    out = np.empty_like(arr)
    _kernels().ema_into(arr, alpha, out)
    return out


@dataclass(frozen=True)
class Macd:
    macd: FloatArray
    signal: FloatArray
    hist: FloatArray
    ema_fast: FloatArray
    ema_slow: FloatArray


def macd(
    x: npt.ArrayLike, fast: int = MACD_FAST, slow: int = MACD_SLOW, signal: int = MACD_SIGNAL
) -> Macd:
    arr = np.ascontiguousarray(_as_float_array(x))
    alphas = (ema_alpha(fast), ema_alpha(slow), ema_alpha(signal))
    fast_ema, slow_ema, line, signal_line, hist = (np.empty_like(arr) for _ in range(5))
    columns = (fast_ema, slow_ema, line, signal_line, hist)
    _kernels().macd_rsi_into(arr, *alphas, *columns, RSI_PERIOD, _EMPTY)
    return Macd(macd=line, signal=signal_line, hist=hist, ema_fast=fast_ema, ema_slow=slow_ema)


MACD_COLUMNS = ("ema12", "ema26", "macd", "macd_signal", "macd_hist")
_EMPTY: FloatArray = np.zeros(0, dtype=np.float64)


def macd_rsi_columns(x: npt.ArrayLike, keys: Collection[str]) -> dict[str, FloatArray]:
    """The requested MACD(12, 26, 9) and RSI14 feature columns (keys among `MACD_COLUMNS` and
    "rsi14") in one pass, the same values as `macd` and `rsi`; columns not requested are neither
    computed nor allocated."""
    arr = np.ascontiguousarray(_as_float_array(x))
    n = arr.shape[0]
    columns = {key: np.empty(n if key in keys else 0) for key in (*MACD_COLUMNS, "rsi14")}
    alphas = (ema_alpha(MACD_FAST), ema_alpha(MACD_SLOW), ema_alpha(MACD_SIGNAL))
    macd_out = [columns[key] for key in MACD_COLUMNS]
    _kernels().macd_rsi_into(arr, *alphas, *macd_out, RSI_PERIOD, columns["rsi14"])
    return {key: values for key, values in columns.items() if key in keys}


def rsi_value(avg_gain: float, avg_loss: float) -> float:
    """Scalar RSI from Wilder averages; the same arithmetic as the vectorized form."""
    if avg_loss == 0.0:
        return 50.0 if avg_gain == 0.0 else 100.0
    return 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)


def rsi(x: npt.ArrayLike, period: int = RSI_PERIOD) -> FloatArray:
    """Wilder RSI; NaN for the first `period` values."""
    if period < 1:
        raise ValueError(f"RSI period must be >= 1, got {period}")
    arr = np.ascontiguousarray(_as_float_array(x))
    out = np.empty(arr.shape[0], dtype=np.float64)
    alphas = (ema_alpha(MACD_FAST), ema_alpha(MACD_SLOW), ema_alpha(MACD_SIGNAL))
    _kernels().macd_rsi_into(arr, *alphas, *(_EMPTY,) * 5, period, out)
    return out


@dataclass(frozen=True)
class Bollinger:
    mid: FloatArray
    upper: FloatArray
    lower: FloatArray


def bollinger(x: npt.ArrayLike, period: int = BOLL_PERIOD, k: float = BOLL_K) -> Bollinger:
    arr = _as_float_array(x)
    n = arr.shape[0]
    mid = np.full(n, np.nan)
    upper = np.full(n, np.nan)
    lower = np.full(n, np.nan)
    if n >= period:
        windows = np.lib.stride_tricks.sliding_window_view(arr, period)
        mean = windows.mean(axis=1)
        std = np.sqrt(((windows - mean[:, None]) ** 2).mean(axis=1))
        mid[period - 1 :] = mean
        upper[period - 1 :] = mean + k * std
        lower[period - 1 :] = mean - k * std
    return Bollinger(mid=mid, upper=upper, lower=lower)


def log_returns(x: npt.ArrayLike) -> FloatArray:
    arr = _as_float_array(x)
    out = np.full(arr.shape[0], np.nan)
    if arr.shape[0] > 1:
        out[1:] = np.log(arr[1:] / arr[:-1])
    return out


def realized_volatility(x: npt.ArrayLike, window: int = VOL_WINDOW) -> FloatArray:
    """sqrt(sum of the last `window` squared log returns); NaN until `window` returns exist."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    arr = _as_float_array(x)
    n = arr.shape[0]
    out = np.full(n, np.nan)
    if n > window:
        r2 = log_returns(arr)[1:] ** 2
        sums = np.lib.stride_tricks.sliding_window_view(r2, window).sum(axis=1)
        out[window:] = np.sqrt(sums)
    return out


def session_vwap(price: npt.ArrayLike, volume: npt.ArrayLike, session: npt.ArrayLike) -> FloatArray:
    """Cumulative VWAP restarting at every change of the session key."""
    p = _as_float_array(price)
    v = _as_float_array(volume)
    keys = np.asarray(session)
    n = p.shape[0]
    if v.shape[0] != n or keys.shape[0] != n:
        raise ValueError("price, volume and session must have the same length")
    out = np.empty(n, dtype=np.float64)
    if n == 0:
        return out
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], n]
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        pv = np.cumsum(p[start:end] * v[start:end])
        vv = np.cumsum(v[start:end])
        with np.errstate(divide="ignore", invalid="ignore"):
            seg = pv / vv
        out[start:end] = np.where(vv > 0.0, seg, p[start:end])
    return out


def rolling_vwap(
    price: npt.ArrayLike, volume: npt.ArrayLike, window: int = VWAP_WINDOW
) -> FloatArray:
    """VWAP over the last `window` bars (fewer at the start); the price when that volume is 0."""
    p = _as_float_array(price)
    v = _as_float_array(volume)
    n = p.shape[0]
    out = np.empty(n, dtype=np.float64)
    if n == 0:
        return out
    pv = np.concatenate([np.zeros(window - 1), p * v])
    vv = np.concatenate([np.zeros(window - 1), v])
    spv = np.lib.stride_tricks.sliding_window_view(pv, window).sum(axis=1)
    sv = np.lib.stride_tricks.sliding_window_view(vv, window).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        vw = spv / sv
    out[:] = np.where(sv > 0.0, vw, p)
    return out


def compute_features(
    close: npt.ArrayLike,
    *,
    volume: npt.ArrayLike | None = None,
    session: npt.ArrayLike | None = None,
    vol_window: int = VOL_WINDOW,
    vwap_window: int = VWAP_WINDOW,
) -> dict[str, FloatArray]:
    """All signal features for one symbol's bars, keyed like `SignalEnvelope.features`.

    Warm-up positions hold NaN. Without volume the VWAP features are omitted.
    """
    c = _as_float_array(close)
    m = macd(c)
    boll = bollinger(c)
    features: dict[str, FloatArray] = {
        "macd": m.macd,
        "macd_signal": m.signal,
        "macd_hist": m.hist,
        "rsi14": rsi(c),
        "ema12": m.ema_fast,
        "ema26": m.ema_slow,
        "boll_mid": boll.mid,
        "boll_upper": boll.upper,
        "boll_lower": boll.lower,
        "vol_realized_w60s": realized_volatility(c, vol_window),
    }
    if volume is not None:
        v = _as_float_array(volume)
        keys = np.zeros(c.shape[0], dtype=np.int64) if session is None else np.asarray(session)
        features["vwap_session"] = session_vwap(c, v, keys)
        features["vwap_w5m"] = rolling_vwap(c, v, vwap_window)
    return features


@dataclass
class IndicatorState:
    """Streaming indicators for one symbol: `update()` once per bar, in time order.

    Gives the same values as `compute_features` over the same bars (to rounding, see module doc).
    """

    vol_window: int = VOL_WINDOW
    vwap_window: int = VWAP_WINDOW
    count: int = 0
    ema12: float = math.nan
    ema26: float = math.nan
    macd_signal: float = math.nan
    last_close: float = math.nan
    avg_gain: float = math.nan
    avg_loss: float = math.nan
    _gain_sum: float = 0.0
    _loss_sum: float = 0.0
    _boll: deque[float] = field(default_factory=lambda: deque(maxlen=BOLL_PERIOD))
    _sq_returns: deque[float] = field(default_factory=deque)
    _session: object = None
    _session_pv: float = 0.0
    _session_v: float = 0.0
    _vwap_bars: deque[tuple[float, float]] = field(default_factory=deque)

    def update(
        self, close: float, *, volume: float | None = None, session: object = None
    ) -> dict[str, float]:
        """Feed one bar; returns the finite features after it (warm-up features are absent)."""
        x = float(close)
        out: dict[str, float] = {}
        a12, a26, a9 = ema_alpha(MACD_FAST), ema_alpha(MACD_SLOW), ema_alpha(MACD_SIGNAL)
        if self.count == 0:
            self.ema12 = x
            self.ema26 = x
            self.macd_signal = self.ema12 - self.ema26
        else:
            self.ema12 = a12 * x + (1.0 - a12) * self.ema12
            self.ema26 = a26 * x + (1.0 - a26) * self.ema26
            line = self.ema12 - self.ema26
            self.macd_signal = a9 * line + (1.0 - a9) * self.macd_signal
        line = self.ema12 - self.ema26
        out["macd"] = line
        out["macd_signal"] = self.macd_signal
        out["macd_hist"] = line - self.macd_signal
        out["ema12"] = self.ema12
        out["ema26"] = self.ema26

        if self.count >= 1:
            d = x - self.last_close
            gain, loss = max(d, 0.0), max(-d, 0.0)
            if self.count < RSI_PERIOD:
                self._gain_sum += gain
                self._loss_sum += loss
            elif self.count == RSI_PERIOD:
                self.avg_gain = (self._gain_sum + gain) / RSI_PERIOD
                self.avg_loss = (self._loss_sum + loss) / RSI_PERIOD
            else:
                a = (RSI_PERIOD - 1) / RSI_PERIOD
                self.avg_gain = a * self.avg_gain + gain / RSI_PERIOD
                self.avg_loss = a * self.avg_loss + loss / RSI_PERIOD
            if self.count >= RSI_PERIOD:
                out["rsi14"] = rsi_value(self.avg_gain, self.avg_loss)
            r = math.log(x / self.last_close)
            self._sq_returns.append(r * r)
            if len(self._sq_returns) > self.vol_window:
                self._sq_returns.popleft()
            if len(self._sq_returns) == self.vol_window:
                out["vol_realized_w60s"] = math.sqrt(math.fsum(self._sq_returns))

        self._boll.append(x)
        if len(self._boll) == BOLL_PERIOD:
            window = np.fromiter(self._boll, dtype=np.float64, count=BOLL_PERIOD)
            mean = float(window.mean())
            std = math.sqrt(float(((window - mean) ** 2).mean()))
            out["boll_mid"] = mean
            out["boll_upper"] = mean + BOLL_K * std
            out["boll_lower"] = mean - BOLL_K * std

        if volume is not None:
            v = float(volume)
            if self.count == 0 or session != self._session:
                self._session = session
                self._session_pv = 0.0
                self._session_v = 0.0
            self._session_pv += x * v
            self._session_v += v
            out["vwap_session"] = self._session_pv / self._session_v if self._session_v > 0 else x
            self._vwap_bars.append((x * v, v))
            if len(self._vwap_bars) > self.vwap_window:
                self._vwap_bars.popleft()
            spv = math.fsum(pv for pv, _ in self._vwap_bars)
            sv = math.fsum(vv for _, vv in self._vwap_bars)
            out["vwap_w5m"] = spv / sv if sv > 0 else x

        self.last_close = x
        self.count += 1
        return out


def finite_features(features: Mapping[str, FloatArray], index: int) -> dict[str, float]:
    """The finite feature values at one row of `compute_features` output."""
    row: dict[str, float] = {}
    for key, values in features.items():
        value = float(values[index])
        if math.isfinite(value):
            row[key] = value
    return row
