"""Account snapshots: equity, cash, buying power and positions, stored per lane."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from trading.brokers.base import Broker
from trading.models import PositionSnapshot


def account_snapshot_refresh(*, account_label: str, broker: Broker) -> PositionSnapshot:
    account = broker.get_account()
    positions = broker.list_positions()
    return PositionSnapshot.objects.create(
        account_label=account_label,
        as_of=timezone.now(),
        equity=account.equity,
        cash=account.cash,
        buying_power=account.buying_power,
        positions=[
            {
                "symbol": p.symbol,
                "qty": str(p.qty),
                "avg_entry_price": str(p.avg_entry_price),
                "market_value": str(p.market_value),
                "side": p.side,
            }
            for p in positions
        ],
    )


def account_snapshot_current(
    *, account_label: str, broker: Broker, refresh: bool = False
) -> PositionSnapshot:
    """The latest snapshot if younger than one reconcile interval, else a fresh one."""
    if not refresh:
        cutoff = timezone.now() - timedelta(milliseconds=settings.TRADING_RECONCILE_MS)
        latest = (
            PositionSnapshot.objects.filter(account_label=account_label, as_of__gte=cutoff)
            .order_by("-as_of")
            .first()
        )
        if latest is not None:
            return latest
    return account_snapshot_refresh(account_label=account_label, broker=broker)
