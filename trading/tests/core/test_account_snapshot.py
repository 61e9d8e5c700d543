"""The lane's account snapshot (`trading.services.accounts.account_snapshot_current`) is reused
for one reconcile interval only while no order of the lane has recorded a fill since it was
taken: a cycle right after a fill sees the position that fill made (a sell it covers is not
refused as a short). Real simulated broker and Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from trading.brokers.simulated import SimulatedBroker
from trading.models import Execution, PositionSnapshot
from trading.services.accounts import account_snapshot_current
from trading.simbroker.models import SimPosition
from trading.simbroker.services import account_get

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)


def _execution(*, label: str, filled: Decimal, n: int = 1) -> Execution:
    return Execution.objects.create(
        account_label=label, broker="simulated", broker_order_id=f"sim-{n}",
        client_order_id=f"tg-{n:045x}", symbol="AAPL", side="buy", order_type="market",
        time_in_force="day", submitted_qty=Decimal(2), filled_qty=filled,
        status="filled" if filled else "accepted",
    )  # fmt: skip


def _hold(qty: str) -> None:
    SimPosition.objects.update_or_create(
        account=account_get("paper"),
        symbol="AAPL",
        defaults={"qty": Decimal(qty), "avg_entry_price": Decimal("190.5")},
    )


def _qty(snapshot: PositionSnapshot) -> dict[str, str]:
    return {row["symbol"]: row["qty"] for row in snapshot.positions}


def test_reused_while_nothing_filled_then_refreshed_after_a_fill(settings) -> None:
    settings.TRADING_RECONCILE_MS = 60_000
    broker = SimulatedBroker("paper")
    with time_machine.travel(T0, tick=False):
        first = account_snapshot_current(account_label="paper", broker=broker)
    assert (first.as_of, _qty(first)) == (T0, {})
    with time_machine.travel(T0 + timedelta(seconds=5), tick=False):
        _execution(label="paper", filled=Decimal(0))  # an order accepted, nothing filled
        assert account_snapshot_current(account_label="paper", broker=broker).pk == first.pk
    # the buy fills at the broker and is recorded: the next cycle's snapshot is taken afresh
    with time_machine.travel(T0 + timedelta(seconds=10), tick=False):
        _hold("2")
        Execution.objects.filter(broker_order_id="sim-1").update(
            filled_qty=Decimal(2), status="filled", updated_at=T0 + timedelta(seconds=10)
        )
        fresh = account_snapshot_current(account_label="paper", broker=broker)
    assert fresh.pk != first.pk
    assert (fresh.as_of, _qty(fresh)) == (T0 + timedelta(seconds=10), {"AAPL": "2.00000000"})
    # and that one is reused until the next fill
    with time_machine.travel(T0 + timedelta(seconds=20), tick=False):
        assert account_snapshot_current(account_label="paper", broker=broker).pk == fresh.pk
    assert PositionSnapshot.objects.filter(account_label="paper").count() == 2


def test_a_fill_of_another_lane_does_not_refresh(settings) -> None:
    settings.TRADING_RECONCILE_MS = 60_000
    broker = SimulatedBroker("paper")
    with time_machine.travel(T0, tick=False):
        first = account_snapshot_current(account_label="paper", broker=broker)
    with time_machine.travel(T0 + timedelta(seconds=5), tick=False):
        _execution(label="paper-b", filled=Decimal(2))
        assert account_snapshot_current(account_label="paper", broker=broker).pk == first.pk


def test_a_snapshot_older_than_the_reconcile_interval_is_refreshed(settings) -> None:
    settings.TRADING_RECONCILE_MS = 60_000
    broker = SimulatedBroker("paper")
    with time_machine.travel(T0, tick=False):
        first = account_snapshot_current(account_label="paper", broker=broker)
    with time_machine.travel(T0 + timedelta(seconds=61), tick=False):
        assert account_snapshot_current(account_label="paper", broker=broker).pk != first.pk
