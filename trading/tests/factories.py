"""Rows the API tests read back: kept in one place so that the figures they assert (a 2-share
AAPL buy filled at 190.50, arrival 190.40, 5.25 bps of slippage) mean the same everywhere."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from trading.models import Execution, ExecutionTcaMetric, TradeDecision


def filled_buy(
    decision: TradeDecision,
    *,
    computed_at: datetime,
    order_type: str = "limit",
    submitted_at: datetime | None = None,
    shortfall_notional: Decimal | None = None,
) -> Execution:
    """The decision's 2-share AAPL buy, filled at 190.50 on the simulated broker, with its TCA
    row (arrival 190.40, slippage 5.25 bps) computed at `computed_at`."""
    execution = Execution.objects.create(
        decision=decision,
        account_label="paper",
        broker="simulated",
        broker_order_id="sim-1",
        client_order_id=decision.client_order_id,
        symbol="AAPL",
        side="buy",
        order_type=order_type,
        time_in_force="day",
        submitted_qty=Decimal("2"),
        filled_qty=Decimal("2"),
        avg_fill_price=Decimal("190.5"),
        status="filled",
        submitted_at=submitted_at,
    )
    ExecutionTcaMetric.objects.create(
        execution=execution,
        decision=decision,
        strategy=decision.strategy,
        account_label="paper",
        symbol="AAPL",
        side="buy",
        arrival_price=Decimal("190.4"),
        avg_fill_price=Decimal("190.5"),
        filled_qty=Decimal("2"),
        slippage_bps=Decimal("5.25"),
        shortfall_notional=shortfall_notional,
        computed_at=computed_at,
    )
    return execution
