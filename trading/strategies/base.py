"""Strategy plugin contract: pure, deterministic functions of one signal (or of feature arrays).

`evaluate` is the live path (one `SignalEnvelope` → an `Intent` or None); `evaluate_arrays` is the
backtest path over whole feature columns (→ int8 actions: +1 buy, -1 sell, 0 none). For the same
features and params both give the same action on every row (tested per strategy).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from trading.signals.types import SignalEnvelope

BUY: np.int8 = np.int8(1)
SELL: np.int8 = np.int8(-1)
NONE: np.int8 = np.int8(0)

Int8Array = npt.NDArray[np.int8]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Intent:
    action: Literal["buy", "sell"]
    confidence: float
    rationale: str
    order_type: str = "market"
    time_in_force: str = "day"


@runtime_checkable
class Strategy(Protocol):
    name: str
    version: str

    def evaluate(self, signal: SignalEnvelope, params: Mapping[str, Any]) -> Intent | None: ...

    def evaluate_arrays(
        self, features: Mapping[str, npt.NDArray[Any]], params: Mapping[str, Any]
    ) -> Int8Array: ...


def param_float(params: Mapping[str, Any], name: str, default: float) -> float:
    """A numeric strategy parameter; TypeError/ValueError name the parameter when it is not a finite
    number (a misconfigured strategy must fail loudly, not trade with a default)."""
    value = params.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise TypeError(f"strategy parameter {name!r} must be a number, got {value!r}")
    try:
        result = float(value)
    except ValueError as exc:
        raise ValueError(f"strategy parameter {name!r} must be a number, got {value!r}") from exc
    if not math.isfinite(result):
        raise ValueError(f"strategy parameter {name!r} must be finite, got {value!r}")
    return result


def column(features: Mapping[str, npt.NDArray[Any]], name: str, n: int) -> FloatArray:
    """A feature column as float64 (all NaN when absent, so every comparison on it is False)."""
    values = features.get(name)
    if values is None:
        return np.full(n, np.nan)
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"feature {name!r} has shape {arr.shape}, expected ({n},)")
    return arr


def row_count(features: Mapping[str, npt.NDArray[Any]]) -> int:
    lengths = {np.asarray(v).shape[0] for v in features.values()}
    if len(lengths) > 1:
        raise ValueError(f"feature columns differ in length: {sorted(lengths)}")
    return lengths.pop() if lengths else 0
