"""The broker `trade_updates` stream's health, as the bridge reports it.

The bridge (`run_trade_updates_stream`, its own process) writes `TradeStreamState` through
`trade_stream_connected` / `trade_stream_touch` / `trade_stream_disconnected`. The trade cycle
reads the health once per cycle (`trading.selectors.trade_stream`) and refuses risk-increasing
orders while it is unhealthy (`trade_updates_stream_unhealthy`, `trading.gates.gate_risk`). The
gap fill (`trading.services.gap_fill`, a beat task every 15 s per Alpaca lane) asks the broker for
the orders the stream may have missed and applies them through the order-state path
(`execution_apply_order`), so the executions stay right while nobody hears the stream.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils import timezone

from trading.gates import StreamHealth
from trading.metrics import TRADE_UPDATES_GAP
from trading.models import TradeStreamState


# -- the bridge's writes --------------------------------------------------------------------------
def trade_stream_connected(*, account_label: str, at: datetime) -> None:
    """The stream is subscribed (`listening`): connected, and that answer is a message."""
    TradeStreamState.objects.update_or_create(
        account_label=account_label,
        defaults={"connected": True, "connected_at": at, "last_message_at": at},
    )


def trade_stream_touch(*, account_label: str, at: datetime, event_at: datetime | None) -> bool:
    """Frames arrived, the last at `at` (a trade update at `event_at`). A compare-and-set UPDATE
    that only moves the times forward (the bridge calls it at most once a second); False when it
    changed nothing."""
    fields: dict[str, Any] = {"last_message_at": at, "updated_at": timezone.now()}
    if event_at is not None:
        fields["last_event_at"] = event_at
    updated = (
        TradeStreamState.objects.filter(account_label=account_label)
        .filter(Q(last_message_at__isnull=True) | Q(last_message_at__lt=at))
        .update(**fields)
    )
    return bool(updated)


def trade_stream_disconnected(*, account_label: str, at: datetime) -> None:
    TradeStreamState.objects.update_or_create(
        account_label=account_label, defaults={"connected": False, "disconnected_at": at}
    )


# -- the gauge ------------------------------------------------------------------------------------
def trade_stream_gauge_set(*, account_label: str, health: StreamHealth) -> None:
    TRADE_UPDATES_GAP.labels(account=account_label).set(
        0.0 if health.healthy else health.gap_seconds
    )
