"""Signal sources (replay file, ClickHouse, Alpaca bars) behind one cursor-based port."""

from trading.signals.base import NO_SIGNAL_REASONS, CursorRules, SignalSource, SignalSourceError
from trading.signals.types import SignalBatch, SignalCursor, SignalEnvelope

__all__ = [
    "NO_SIGNAL_REASONS",
    "CursorRules",
    "SignalBatch",
    "SignalCursor",
    "SignalEnvelope",
    "SignalSource",
    "SignalSourceError",
]
