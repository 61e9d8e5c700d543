from datetime import UTC, datetime
from decimal import Decimal

from trading.signals.types import SignalEnvelope
from trading.strategies.base import Intent


def signal(**features):
    return SignalEnvelope(
        event_ts=datetime(2026, 3, 3, 15, 0, tzinfo=UTC),
        symbol="AAPL",
        seq=1,
        timeframe="1Min",
        source="test",
        price=Decimal("100.00"),
        features=features,
    )


def action(intent: Intent | None) -> str | None:
    return intent.action if intent else None


def confidence(intent: Intent | None) -> float | None:
    return intent.confidence if intent else None
