"""Reads behind the allocator gate (`trading.gates.gate_allocator`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Case, DecimalField, F, Sum, When

from trading.models import Execution

_QTY: DecimalField[Decimal, Decimal] = DecimalField(max_digits=24, decimal_places=8)
_NOTIONAL: DecimalField[Decimal, Decimal] = DecimalField(max_digits=40, decimal_places=14)


@dataclass(frozen=True)
class StrategyBooks:
    # strategy name -> symbol -> signed filled quantity (buys add, sells subtract)
    positions: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    # symbol -> average fill price over those executions (the price of last resort)
    fill_prices: dict[str, Decimal] = field(default_factory=dict)


def strategy_books(*, account_label: str) -> StrategyBooks:
    """What each strategy's filled orders on the lane add up to, in one query. Orders without a
    decision (adopted unknown orders) belong to no strategy."""
    signed = Case(
        When(side="buy", then=F("filled_qty")), default=-F("filled_qty"), output_field=_QTY
    )
    rows = (
        Execution.objects.filter(
            account_label=account_label,
            decision__isnull=False,
            filled_qty__gt=0,
            avg_fill_price__isnull=False,
        )
        .values_list("decision__strategy__name", "symbol")
        .annotate(
            qty=Sum(signed),
            filled=Sum("filled_qty"),
            notional=Sum(F("filled_qty") * F("avg_fill_price"), output_field=_NOTIONAL),
        )
        .order_by()
    )
    books = StrategyBooks()
    totals: dict[str, tuple[Decimal, Decimal]] = {}
    for strategy, symbol, qty, filled, notional in rows:
        if qty:
            books.positions.setdefault(strategy, {})[symbol] = qty
        done, value = totals.get(symbol, (Decimal(0), Decimal(0)))
        totals[symbol] = (done + filled, value + notional)
    for symbol, (done, value) in totals.items():
        books.fill_prices[symbol] = value / done
    return books
