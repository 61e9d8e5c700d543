"""Transaction-cost arithmetic shared by the trading core and order-feed ingest: a fill against
the decision's arrival price (Decimal in, Decimal out, no database)."""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

_BPS = Decimal(10000)
_BPS_PLACES = Decimal("0.0001")
_NOTIONAL_PLACES = Decimal("0.000001")


class TcaNumbers(NamedTuple):
    signed_qty: Decimal
    slippage_bps: Decimal | None  # positive = paid more (buy) / received less (sell)
    shortfall_notional: Decimal | None


def tca_numbers(
    *, side: str, arrival: Decimal | None, fill: Decimal | None, filled_qty: Decimal
) -> TcaNumbers:
    direction = Decimal(1) if side == "buy" else Decimal(-1)
    if not arrival or not fill:
        return TcaNumbers(direction * filled_qty, None, None)
    return TcaNumbers(
        direction * filled_qty,
        (direction * (fill - arrival) / arrival * _BPS).quantize(_BPS_PLACES),
        (direction * (fill - arrival) * filled_qty).quantize(_NOTIONAL_PLACES),
    )
