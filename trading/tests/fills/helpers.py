"""Fills and minute bars for the fill-realism tests: executions written directly (the books
tests' helper) with the broker's fill time, bars served by the Alpaca data API stand-in."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from tests.servers.alpaca_server import AlpacaServer
from trading.brokers.alpaca import AlpacaMarketData
from trading.models import Execution, ExecutionTransition
from trading.tests.books.helpers import T0, fill


def filled(
    strategy_name: str | None,
    symbol: str,
    side: str,
    qty: str,
    price: str,
    *,
    minute: int,
    account_label: str = "paper",
    second: int = 20,
    submitted: str | None = None,
    at: datetime | None = None,
) -> Execution:
    """An execution filled at T0 + `minute` min + `second` s, or `at` (the broker's
    `filled_at`, and its first recorded fill when `at` is given)."""
    execution = fill(
        strategy_name,
        symbol,
        side,
        qty,
        price,
        minute=minute,
        account_label=account_label,
        submitted=submitted,
    )
    if at is not None:
        ExecutionTransition.objects.filter(execution=execution).update(at=at)
    at = at or T0 + timedelta(minutes=minute, seconds=second)
    Execution.objects.filter(pk=execution.pk).update(
        raw_order={"filled_at": at.isoformat().replace("+00:00", "Z"), "status": execution.status}
    )
    return Execution.objects.get(pk=execution.pk)


def bar(
    minute: int,
    low: str,
    high: str,
    volume: int,
    close: str | None = None,
    *,
    opens: datetime | None = None,
) -> dict[str, Any]:
    """One Alpaca bar (JSON as the data API sends it) opening at T0 + `minute` min, or at the
    minute holding `opens`."""
    at = (opens or T0 + timedelta(minutes=minute)).replace(second=0, microsecond=0)
    return {
        "t": at.isoformat().replace("+00:00", "Z"),
        "o": low,
        "h": high,
        "l": low,
        "c": close or high,
        "v": volume,
        "n": 10,
        "vw": low,
    }


def market_data(server: AlpacaServer) -> AlpacaMarketData:
    return AlpacaMarketData(
        api_key=server.key,
        secret_key=server.secret,
        base_url=server.url,
        feed="iex",
        timeout_seconds=2,
    )


def dec(value: str) -> Decimal:
    return Decimal(value)
