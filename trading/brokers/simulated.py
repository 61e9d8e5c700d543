"""Adapter for the built-in simulated broker (`trading.simbroker`): the embedded default."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from trading.brokers.base import (
    BrokerAccount,
    BrokerClock,
    BrokerOrder,
    BrokerPosition,
    OrderRequest,
)
from trading.simbroker import services as sim
from trading.simbroker.models import SimMarketPrice, SimOrder, SimPosition


def _order(order: SimOrder) -> BrokerOrder:
    return BrokerOrder(
        id=str(order.order_id),
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        order_type=order.order_type,
        time_in_force=order.time_in_force,
        qty=order.qty,
        filled_qty=order.filled_qty,
        filled_avg_price=order.filled_avg_price,
        status=order.status,
        submitted_at=order.submitted_at,
        updated_at=order.updated_at,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        raw=sim.order_json(order),
    )


class SimulatedBroker:
    name = "simulated"

    def __init__(self, account_label: str) -> None:
        self.account_label = account_label

    def get_account(self) -> BrokerAccount:
        account = sim.account_get(self.account_label)
        return BrokerAccount(
            account_id=f"sim-{account.account_label}",
            equity=sim.equity(account),
            cash=account.cash,
            buying_power=sim.buying_power(account),
        )

    def list_positions(self) -> list[BrokerPosition]:
        account = sim.account_get(self.account_label)
        positions = []
        for row in SimPosition.objects.filter(account=account).exclude(qty=0).order_by("symbol"):
            last = SimMarketPrice.objects.filter(symbol=row.symbol).first()
            price = last.price if last else row.avg_entry_price
            positions.append(
                BrokerPosition(
                    symbol=row.symbol,
                    qty=row.qty,
                    avg_entry_price=row.avg_entry_price,
                    market_value=row.qty * price,
                    side="long" if row.qty > 0 else "short",
                )
            )
        return positions

    def get_clock(self) -> BrokerClock:
        return BrokerClock(
            timestamp=datetime.now(tz=UTC), is_open=True, next_open=None, next_close=None
        )

    def submit_order(self, request: OrderRequest) -> BrokerOrder:
        return _order(sim.order_submit(account_label=self.account_label, request=request))

    def get_order(self, order_id: str) -> BrokerOrder:
        return _order(sim.order_get(account_label=self.account_label, order_id=order_id))

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder:
        return _order(
            sim.order_get(account_label=self.account_label, client_order_id=client_order_id)
        )

    def list_orders(self, *, status: str = "open", limit: int = 500) -> list[BrokerOrder]:
        rows = SimOrder.objects.filter(account=sim.account_get(self.account_label)).order_by(
            "-submitted_at", "-pk"
        )
        if status == "open":
            rows = rows.filter(status__in=["accepted", "partially_filled"])
        elif status == "closed":
            rows = rows.filter(status__in=["filled", "canceled", "expired"])
        return [_order(o) for o in rows[:limit]]

    def list_orders_after(self, *, after: datetime, limit: int = 500) -> list[BrokerOrder]:
        rows = SimOrder.objects.filter(
            account=sim.account_get(self.account_label), submitted_at__gt=after
        ).order_by("submitted_at", "pk")
        return [_order(o) for o in rows[: max(1, limit)]]

    def cancel_order(self, order_id: str) -> None:
        sim.order_cancel(account_label=self.account_label, order_id=order_id)

    def cancel_all_orders(self) -> list[str]:
        return sim.orders_cancel_all(account_label=self.account_label)

    def observe_prices(self, prices: dict[str, tuple[Decimal, datetime]]) -> None:
        sim.observe_prices(account_label=self.account_label, prices=prices)
