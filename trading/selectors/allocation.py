"""Reads behind the allocator gate (`trading.gates.gate_allocator`) and the per-strategy books
(`trading.selectors.books`): both sum the lane's filled executions in one aggregate query."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Case, DecimalField, F, Q, Sum, When

from trading.models import Execution

_QTY: DecimalField[Decimal, Decimal] = DecimalField(max_digits=24, decimal_places=8)
_NOTIONAL: DecimalField[Decimal, Decimal] = DecimalField(max_digits=40, decimal_places=14)
ZERO = Decimal(0)


@dataclass(frozen=True)
class BookTotals:
    """What the filled executions of one strategy (None: orders without a decision) on one
    symbol add up to: each execution counted once, at its cumulative fill."""

    strategy: str | None
    symbol: str
    position: Decimal  # signed filled quantity: buys add, sells subtract
    buy_qty: Decimal
    sell_qty: Decimal
    buy_notional: Decimal  # sum of filled_qty x avg_fill_price over the buys
    sell_notional: Decimal


@dataclass(frozen=True)
class StrategyBooks:
    # strategy name -> symbol -> signed filled quantity (buys add, sells subtract)
    positions: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    # symbol -> average fill price over those executions (the price of last resort)
    fill_prices: dict[str, Decimal] = field(default_factory=dict)


def book_totals(*, account_label: str) -> list[BookTotals]:
    """Per strategy and symbol, the lane's filled executions summed in one query. Orders without
    a decision (adopted unknown orders) belong to no strategy: their rows carry strategy None."""
    signed = Case(
        When(side="buy", then=F("filled_qty")), default=-F("filled_qty"), output_field=_QTY
    )
    value = F("filled_qty") * F("avg_fill_price")
    buy, sell = Q(side="buy"), Q(side="sell")
    rows = (
        Execution.objects.filter(
            account_label=account_label, filled_qty__gt=0, avg_fill_price__isnull=False
        )
        .values_list("decision__strategy__name", "symbol")
        .annotate(
            qty=Sum(signed),
            buy_qty=Sum("filled_qty", filter=buy, default=ZERO),
            sell_qty=Sum("filled_qty", filter=sell, default=ZERO),
            buy_notional=Sum(value, filter=buy, output_field=_NOTIONAL, default=ZERO),
            sell_notional=Sum(value, filter=sell, output_field=_NOTIONAL, default=ZERO),
        )
        .order_by("decision__strategy__name", "symbol")
    )
    return [BookTotals(*row) for row in rows]


def strategy_books(*, account_label: str) -> StrategyBooks:
    """What each strategy's filled orders on the lane add up to, in one query. Orders without a
    decision (adopted unknown orders) belong to no strategy."""
    books = StrategyBooks()
    totals: dict[str, tuple[Decimal, Decimal]] = {}
    for row in book_totals(account_label=account_label):
        if row.strategy is None:
            continue
        if row.position:
            books.positions.setdefault(row.strategy, {})[row.symbol] = row.position
        done, value = totals.get(row.symbol, (ZERO, ZERO))
        totals[row.symbol] = (
            done + row.buy_qty + row.sell_qty,
            value + row.buy_notional + row.sell_notional,
        )
    for symbol, (done, value) in totals.items():
        books.fill_prices[symbol] = value / done
    return books
