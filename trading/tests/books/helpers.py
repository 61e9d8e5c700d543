"""Rows for the books tests: decisions and executions written directly, fills at exact prices."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from trading.models import Execution, ExecutionTransition, Strategy, TradeDecision

T0 = datetime(2026, 3, 3, 14, 31, tzinfo=UTC)
_ids = itertools.count(1)


def strategy(name: str) -> Strategy:
    return Strategy.objects.get_or_create(
        name=name, defaults={"strategy_type": "legacy_macd_rsi", "enabled": True}
    )[0]


def fill(
    strategy_name: str | None,
    symbol: str,
    side: str,
    qty: str,
    price: str,
    *,
    minute: int,
    account_label: str = "paper",
    submitted: str | None = None,
) -> Execution:
    """One execution filled `qty` at `price`, its first fill recorded at T0 + `minute`."""
    n = next(_ids)
    decision = None
    if strategy_name is not None:
        decision = TradeDecision.objects.create(
            strategy=strategy(strategy_name),
            account_label=account_label,
            symbol=symbol,
            timeframe="1Min",
            event_ts=T0,
            action=side,
            qty=Decimal(submitted or qty),
            decision_hash=f"{n:064x}",
            client_order_id=f"c{n}",
            status="filled",
        )
    execution = Execution.objects.create(
        decision=decision,
        account_label=account_label,
        broker="simulated",
        broker_order_id=f"o{n}",
        client_order_id=f"c{n}",
        symbol=symbol,
        side=side,
        order_type="market",
        time_in_force="day",
        submitted_qty=Decimal(submitted or qty),
        filled_qty=Decimal(qty),
        avg_fill_price=Decimal(price) if Decimal(qty) else None,
        status="filled" if submitted is None else "partially_filled",
        unknown_order=decision is None,
    )
    if Decimal(qty):
        transition = ExecutionTransition.objects.create(
            execution=execution,
            from_status="accepted",
            to_status=execution.status,
            filled_qty=Decimal(qty),
            source="order_feed",
        )
        ExecutionTransition.objects.filter(pk=transition.pk).update(
            at=T0 + timedelta(minutes=minute)
        )
    return execution
