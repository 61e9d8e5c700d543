"""Reads behind the allocator gate (`trading.gates.gate_allocator`)."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Case, DecimalField, F, Sum, When

from trading.models import Execution


def strategy_positions(*, account_label: str) -> dict[str, dict[str, Decimal]]:
    """Strategy name -> symbol -> signed filled quantity of the lane's orders that came from that
    strategy's decisions (buys add, sells subtract), in one query. Orders without a decision
    (adopted unknown orders) belong to no strategy."""
    signed = Case(
        When(side="buy", then=F("filled_qty")),
        default=-F("filled_qty"),
        output_field=DecimalField(max_digits=24, decimal_places=8),
    )
    rows = (
        Execution.objects.filter(
            account_label=account_label, decision__isnull=False, filled_qty__gt=0
        )
        .values_list("decision__strategy__name", "symbol")
        .annotate(qty=Sum(signed))
        .order_by()
    )
    out: dict[str, dict[str, Decimal]] = {}
    for strategy, symbol, qty in rows:
        if qty:
            out.setdefault(strategy, {})[symbol] = qty
    return out
