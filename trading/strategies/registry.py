"""Strategy plugins by `strategies.strategy_type`."""

from __future__ import annotations

from types import MappingProxyType

from trading.strategies.base import Strategy
from trading.strategies.intraday_tsmom import IntradayTsmom
from trading.strategies.legacy_macd_rsi import LegacyMacdRsi

_LEGACY = LegacyMacdRsi()
_TSMOM = IntradayTsmom()

STRATEGIES: MappingProxyType[str, Strategy] = MappingProxyType(
    {
        "legacy_macd_rsi": _LEGACY,
        "intraday_tsmom": _TSMOM,
        "intraday_tsmom_v1": _TSMOM,  # the original's name (docs/compatibility.md#sizing-and-risk)
    }
)


def get_strategy(strategy_type: str) -> Strategy:
    try:
        return STRATEGIES[strategy_type]
    except KeyError:
        known = ", ".join(sorted(STRATEGIES))
        raise KeyError(f"unknown strategy type {strategy_type!r}; known types: {known}") from None


def strategy_types() -> tuple[str, ...]:
    return tuple(sorted(STRATEGIES))
