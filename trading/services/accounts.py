"""Account snapshots: equity, cash, buying power and positions, stored per lane."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from trading.brokers.base import Broker
from trading.models import Execution, PositionSnapshot


def account_snapshot_refresh(*, account_label: str, broker: Broker) -> PositionSnapshot:
    # as of before the broker is asked: a fill recorded after this instant may be missing from
    # the answer, so `account_snapshot_current` does not reuse the snapshot past it
    asked_at = timezone.now()
    account = broker.get_account()
    positions = broker.list_positions()
    return PositionSnapshot.objects.create(
        account_label=account_label,
        as_of=asked_at,
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
    """The latest snapshot if younger than one reconcile interval and no order of the lane has
    recorded a fill since it was taken, else a fresh one: positions and cash never lag the fills
    this lane has already seen (a sell its own fills cover is not refused as a short)."""
    if not refresh:
        cutoff = timezone.now() - timedelta(milliseconds=settings.TRADING_RECONCILE_MS)
        latest = (
            PositionSnapshot.objects.filter(account_label=account_label, as_of__gte=cutoff)
            .order_by("-as_of")
            .first()
        )
        if latest is not None and not _filled_since(account_label, latest.as_of):
            return latest
    return account_snapshot_refresh(account_label=account_label, broker=broker)


def _filled_since(account_label: str, since: datetime) -> bool:
    """Whether an execution of the lane with a fill changed after `since` (every fill, partial
    or whole, from the submit, reconcile or the order feed, moves `updated_at`)."""
    return Execution.objects.filter(
        account_label=account_label, updated_at__gt=since, filled_qty__gt=0
    ).exists()
