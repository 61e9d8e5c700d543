"""Strategy plugins shared by live trading and the backtester."""

from trading.strategies.base import Intent, Strategy
from trading.strategies.registry import get_strategy, strategy_types

__all__ = ["Intent", "Strategy", "get_strategy", "strategy_types"]
