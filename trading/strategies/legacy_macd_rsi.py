"""legacy_macd_rsi@1.0.0: buy when MACD is above its signal line and RSI14 is oversold; sell when
MACD is below its signal line and RSI14 is overbought (docs/compatibility.md#sizing-and-risk)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from trading.signals.types import SignalEnvelope
from trading.strategies.base import Int8Array, Intent, column, param_float, row_count

CONFIDENCE = 0.65
DEFAULT_BUY_RSI = 35.0
DEFAULT_SELL_RSI = 65.0


class LegacyMacdRsi:
    name = "legacy_macd_rsi"
    version = "1.0.0"

    @staticmethod
    def _thresholds(params: Mapping[str, Any]) -> tuple[float, float]:
        return (
            param_float(params, "buy_rsi_threshold", DEFAULT_BUY_RSI),
            param_float(params, "sell_rsi_threshold", DEFAULT_SELL_RSI),
        )

    def evaluate(self, signal: SignalEnvelope, params: Mapping[str, Any]) -> Intent | None:
        buy_rsi, sell_rsi = self._thresholds(params)
        f = signal.features
        macd, macd_signal, rsi14 = f.get("macd"), f.get("macd_signal"), f.get("rsi14")
        if macd is None or macd_signal is None or rsi14 is None:
            return None
        if macd > macd_signal and rsi14 < buy_rsi:
            return Intent(
                action="buy",
                confidence=CONFIDENCE,
                rationale=f"macd_cross_up,rsi_oversold(rsi14={rsi14:.2f}<{buy_rsi:g})",
            )
        if macd < macd_signal and rsi14 > sell_rsi:
            return Intent(
                action="sell",
                confidence=CONFIDENCE,
                rationale=f"macd_cross_down,rsi_overbought(rsi14={rsi14:.2f}>{sell_rsi:g})",
            )
        return None

    def evaluate_arrays(
        self, features: Mapping[str, npt.NDArray[Any]], params: Mapping[str, Any]
    ) -> Int8Array:
        buy_rsi, sell_rsi = self._thresholds(params)
        n = row_count(features)
        macd = column(features, "macd", n)
        macd_signal = column(features, "macd_signal", n)
        rsi14 = column(features, "rsi14", n)
        buy = (macd > macd_signal) & (rsi14 < buy_rsi)
        sell = (macd < macd_signal) & (rsi14 > sell_rsi) & ~buy
        out = np.zeros(n, dtype=np.int8)
        out[buy] = 1
        out[sell] = -1
        return out
