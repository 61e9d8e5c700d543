"""intraday_tsmom@1.1.0: intraday time-series momentum with a volatility gate
(docs/compatibility.md#sizing-and-risk).

Buy when the trend is up (ema12 > ema26), MACD is above its signal line with
hist = macd - macd_signal ≥ bullish_hist_min (0.04), min_bull_rsi (52) ≤ RSI14 ≤ max_bull_rsi (62)
and vol_floor (0.001) ≤ vol_realized_w60s ≤ vol_ceil (0.012); a signal without realized volatility
cannot pass the gate. Confidence 0.64, +0.05 when hist ≥ strong_hist (0.10), +0.03 when
vol ≤ calm_vol (0.008), capped at 0.82.
Sell when the trend is down (ema12 < ema26), RSI14 ≥ min_bear_rsi (66) and
macd_signal - macd ≥ bearish_hist_min (0.06). Confidence 0.62, +0.03 when RSI14 ≥ hot_rsi (72),
capped at 0.78. A buy is checked first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from trading.signals.types import SignalEnvelope
from trading.strategies.base import Int8Array, Intent, column, param_float, row_count

BUY_CONFIDENCE = 0.64
BUY_STRONG_HIST_BONUS = 0.05
BUY_CALM_VOL_BONUS = 0.03
BUY_CONFIDENCE_CAP = 0.82
SELL_CONFIDENCE = 0.62
SELL_HOT_RSI_BONUS = 0.03
SELL_CONFIDENCE_CAP = 0.78


@dataclass(frozen=True)
class TsmomParams:
    bullish_hist_min: float = 0.04
    strong_hist: float = 0.10
    min_bull_rsi: float = 52.0
    max_bull_rsi: float = 62.0
    vol_floor: float = 0.001
    vol_ceil: float = 0.012
    calm_vol: float = 0.008
    min_bear_rsi: float = 66.0
    bearish_hist_min: float = 0.06
    hot_rsi: float = 72.0

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> TsmomParams:
        defaults = cls()
        return cls(
            **{
                name: param_float(params, name, getattr(defaults, name))
                for name in cls.__dataclass_fields__
            }
        )


class IntradayTsmom:
    name = "intraday_tsmom"
    version = "1.1.0"

    def evaluate(self, signal: SignalEnvelope, params: Mapping[str, Any]) -> Intent | None:
        p = TsmomParams.parse(params)
        f = signal.features
        ema12, ema26 = f.get("ema12"), f.get("ema26")
        macd, macd_signal, rsi14 = f.get("macd"), f.get("macd_signal"), f.get("rsi14")
        vol = f.get("vol_realized_w60s")
        if ema12 is None or ema26 is None or macd is None or macd_signal is None or rsi14 is None:
            return None
        hist = macd - macd_signal
        if (
            ema12 > ema26
            and macd > macd_signal
            and hist >= p.bullish_hist_min
            and p.min_bull_rsi <= rsi14 <= p.max_bull_rsi
            and vol is not None
            and p.vol_floor <= vol <= p.vol_ceil
        ):
            confidence = BUY_CONFIDENCE
            reasons = ["tsmom_trend_up", f"macd_hist={hist:.4f}", f"rsi14={rsi14:.2f}"]
            if hist >= p.strong_hist:
                confidence += BUY_STRONG_HIST_BONUS
                reasons.append("strong_momentum")
            if vol <= p.calm_vol:
                confidence += BUY_CALM_VOL_BONUS
                reasons.append("calm_volatility")
            return Intent(
                action="buy",
                confidence=round(min(confidence, BUY_CONFIDENCE_CAP), 4),
                rationale=",".join(reasons),
            )
        if ema12 < ema26 and rsi14 >= p.min_bear_rsi and -hist >= p.bearish_hist_min:
            confidence = SELL_CONFIDENCE
            reasons = ["tsmom_trend_down", f"macd_hist={hist:.4f}", f"rsi14={rsi14:.2f}"]
            if rsi14 >= p.hot_rsi:
                confidence += SELL_HOT_RSI_BONUS
                reasons.append("overheated")
            return Intent(
                action="sell",
                confidence=round(min(confidence, SELL_CONFIDENCE_CAP), 4),
                rationale=",".join(reasons),
            )
        return None

    def evaluate_arrays(
        self, features: Mapping[str, npt.NDArray[Any]], params: Mapping[str, Any]
    ) -> Int8Array:
        p = TsmomParams.parse(params)
        n = row_count(features)
        ema12 = column(features, "ema12", n)
        ema26 = column(features, "ema26", n)
        macd = column(features, "macd", n)
        macd_signal = column(features, "macd_signal", n)
        rsi14 = column(features, "rsi14", n)
        vol = column(features, "vol_realized_w60s", n)
        hist = macd - macd_signal
        buy = (
            (ema12 > ema26)
            & (macd > macd_signal)
            & (hist >= p.bullish_hist_min)
            & (rsi14 >= p.min_bull_rsi)
            & (rsi14 <= p.max_bull_rsi)
            & (vol >= p.vol_floor)
            & (vol <= p.vol_ceil)
        )
        sell = (ema12 < ema26) & (rsi14 >= p.min_bear_rsi) & (-hist >= p.bearish_hist_min) & ~buy
        out = np.zeros(n, dtype=np.int8)
        out[buy] = 1
        out[sell] = -1
        return out
