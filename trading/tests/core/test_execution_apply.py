"""`execution_apply_order` (submit, adopt, reconciliation) on the order-state rule: the rows it
leaves, exactly, where it used to differ from the order feed."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from trading.brokers.base import BrokerOrder
from trading.identity import client_order_id_for
from trading.models import (
    Execution,
    ExecutionTcaMetric,
    ExecutionTransition,
    Strategy,
    TradeDecision,
    TradeDecisionTransition,
)
from trading.services.execution import execution_apply_order

pytestmark = pytest.mark.django_db

AT = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
EARLIER = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)


def order_of(
    *, status: str = "submitted", execution_status: str = "accepted", **fields
) -> tuple[TradeDecision, Execution]:
    strategy = Strategy.objects.create(
        name="apply", strategy_type="legacy_macd_rsi", base_timeframe="1Min"
    )
    decision_hash = hashlib.sha256(b"apply").hexdigest()
    decision = TradeDecision.objects.create(
        strategy=strategy,
        account_label="paper",
        symbol="AAPL",
        timeframe="1Min",
        event_ts=EARLIER,
        action="buy",
        qty=Decimal(10),
        price=Decimal(100),
        decision_hash=decision_hash,
        client_order_id=client_order_id_for(decision_hash),
        status=status,
        **fields,
    )
    execution = Execution.objects.create(
        decision=decision,
        account_label="paper",
        broker="simulated",
        broker_order_id="order-1",
        client_order_id=decision.client_order_id,
        symbol="AAPL",
        side="buy",
        order_type="market",
        time_in_force="day",
        submitted_qty=Decimal(10),
        status=execution_status,
    )
    return decision, execution


def snapshot(status: str, filled: str = "0", avg: str | None = None) -> BrokerOrder:
    return BrokerOrder(
        id="order-1",
        client_order_id="ignored",
        symbol="AAPL",
        side="buy",
        order_type="market",
        time_in_force="day",
        qty=Decimal(10),
        filled_qty=Decimal(filled),
        filled_avg_price=Decimal(avg) if avg is not None else None,
        status=status,
        submitted_at=None,
        updated_at=None,
        raw={"status": status, "filled_qty": filled},
    )


def apply(execution: Execution, order: BrokerOrder) -> bool:
    with time_machine.travel(AT, tick=False):
        return execution_apply_order(execution=execution, order=order, source="reconcile")


def rows(decision: TradeDecision, execution: Execution):
    decision.refresh_from_db()
    execution.refresh_from_db()
    return (
        (execution.status, execution.filled_qty, execution.avg_fill_price),
        list(
            ExecutionTransition.objects.filter(execution=execution)
            .order_by("pk")
            .values_list("from_status", "to_status", "filled_qty", "source")
        ),
        (decision.status, decision.executed_at, decision.reject_reason),
        list(
            TradeDecisionTransition.objects.filter(decision=decision)
            .order_by("pk")
            .values_list("from_status", "to_status", "reason")
        ),
    )


def test_a_partial_fill_then_cancel_in_one_snapshot_records_executed_at():
    decision, execution = order_of()
    assert apply(execution, snapshot("canceled", "4", "100.1")) is True
    assert rows(decision, execution) == (
        ("canceled", Decimal("4"), Decimal("100.1")),
        [("accepted", "canceled", Decimal("4"), "reconcile")],
        ("canceled", AT, ""),  # was: no executed_at
        [("submitted", "canceled", "order_reconcile")],
    )
    tca = ExecutionTcaMetric.objects.get(execution=execution)
    assert (tca.filled_qty, tca.slippage_bps) == (Decimal("4"), Decimal("10.0000"))


def test_a_rejection_keeps_the_decisions_earlier_reason():
    decision, execution = order_of(reject_reason="risk_note")
    assert apply(execution, snapshot("rejected")) is True
    assert rows(decision, execution)[2:] == (
        ("rejected", None, "risk_note"),  # was: overwritten with broker_rejected
        [("submitted", "rejected", "order_reconcile")],
    )


def test_a_rejection_without_a_reason_writes_broker_rejected():
    decision, execution = order_of()
    assert apply(execution, snapshot("rejected")) is True
    assert rows(decision, execution)[2] == ("rejected", None, "broker_rejected")


def test_a_decision_left_behind_its_order_catches_up_though_the_execution_is_current():
    decision, execution = order_of(status="submitting", execution_status="filled")
    Execution.objects.filter(pk=execution.pk).update(
        filled_qty=Decimal(10), avg_fill_price=Decimal("100.2")
    )
    assert apply(execution, snapshot("filled", "10", "100.2")) is False
    assert rows(decision, execution) == (
        ("filled", Decimal("10"), Decimal("100.2")),
        [],  # the execution did not change: no transition row, no TCA refresh
        ("filled", AT, ""),  # was: left in submitting
        [("submitting", "filled", "order_reconcile")],
    )
    assert ExecutionTcaMetric.objects.count() == 0


def test_a_fill_the_decision_cannot_follow_still_records_executed_at():
    decision, execution = order_of(status="rejected", reject_reason="submit_unconfirmed")
    assert apply(execution, snapshot("filled", "10", "100.2")) is True
    assert rows(decision, execution) == (
        ("filled", Decimal("10"), Decimal("100.2")),
        [("accepted", "filled", Decimal("10"), "reconcile")],
        ("rejected", AT, "submit_unconfirmed"),  # was: no executed_at
        [],
    )


def test_a_final_execution_never_moves_again():
    decision, execution = order_of(status="canceled", execution_status="canceled")
    Execution.objects.filter(pk=execution.pk).update(
        filled_qty=Decimal(4), avg_fill_price=Decimal("100.1")
    )
    TradeDecision.objects.filter(pk=decision.pk).update(executed_at=EARLIER)
    assert apply(execution, snapshot("canceled", "6", "100.3")) is False
    assert rows(decision, execution) == (
        ("canceled", Decimal("4"), Decimal("100.1")),  # was: filled qty raised to 6
        [],
        ("canceled", EARLIER, ""),
        [],
    )
    assert ExecutionTcaMetric.objects.count() == 0


def test_a_larger_fill_without_a_price_keeps_the_last_price():
    decision, execution = order_of(status="partially_filled", execution_status="partially_filled")
    Execution.objects.filter(pk=execution.pk).update(
        filled_qty=Decimal(4), avg_fill_price=Decimal("100.1")
    )
    TradeDecision.objects.filter(pk=decision.pk).update(executed_at=EARLIER)
    assert apply(execution, snapshot("partially_filled", "6")) is True
    assert rows(decision, execution) == (
        ("partially_filled", Decimal("6"), Decimal("100.1")),  # was: the price cleared
        [("partially_filled", "partially_filled", Decimal("6"), "reconcile")],
        ("partially_filled", EARLIER, ""),
        [],
    )


def test_an_unchanged_snapshot_writes_nothing():
    decision, execution = order_of(execution_status="new")
    assert apply(execution, snapshot("new")) is False
    assert rows(decision, execution) == (("new", Decimal(0), None), [], ("submitted", None, ""), [])
