"""Fill realism: is a paper or simulated fill one the market could have given? (Decimal in,
Decimal out, no database; `trading.services.fill_checks` stores the judgement.)

A fill is compared with the minute bar holding its fill time:
- price: inside the bar's [low, high], widened by TRADING_FILL_CHECK_PRICE_TOLERANCE_BPS on each
  side; outside it the verdict is `price_outside_bar`;
- participation: qty / bar volume at most TRADING_FILL_CHECK_MAX_PARTICIPATION; above it (or a bar
  that traded nothing) the verdict is `participation_high`;
- no bar for the minute: `no_bar` (counted and reported, never repriced: nothing to price it on).
The price rule is judged first: a fill that breaks both is `price_outside_bar`.

Conservative repricing of a flagged fill (never in the fill's favour):
- `price_outside_bar`: the fill's price is not a market price, and it is off by its `excess` (the
  distance from the bar's range: price - high above it, low - price below it). A buy is repriced at
  the worse of its price and the bar's high, made worse again by the excess; a sell at the worse
  of its price and the bar's low, less the excess (not below zero). So a buy 0.10 above the high
  costs 0.10 more per share, and a buy 0.10 below the low pays the high plus 0.10;
- `participation_high`: the order was too large to fill at one price in that minute: a buy is
  repriced at the bar's high, a sell at the bar's low (or the fill's price when already worse).
The haircut is (repriced - price) x qty for a buy and (price - repriced) x qty for a sell, always
>= 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from trading.marketdata import Bar

ZERO = Decimal(0)
BPS = Decimal(10000)
PRICE_PLACES = Decimal("0.000001")
RATIO_PLACES = Decimal("0.00000001")

OK = "ok"
PRICE_OUTSIDE_BAR = "price_outside_bar"
PARTICIPATION_HIGH = "participation_high"
NO_BAR = "no_bar"
FLAGGED = (PRICE_OUTSIDE_BAR, PARTICIPATION_HIGH)


@dataclass(frozen=True)
class FillTerms:
    max_participation: Decimal  # qty / bar volume, in (0, 1]
    price_tolerance_bps: Decimal  # >= 0


@dataclass(frozen=True)
class FillJudgement:
    verdict: str
    participation: Decimal | None  # None: no bar, or a bar without volume
    repriced_price: Decimal | None  # None: ok or no_bar
    haircut_notional: Decimal


def _haircut(side: str, price: Decimal, repriced: Decimal, qty: Decimal) -> Decimal:
    move = repriced - price if side == "buy" else price - repriced
    return (move * qty).quantize(PRICE_PLACES)


def _flagged(
    side: str, price: Decimal, qty: Decimal, verdict: str, repriced: Decimal
) -> tuple[str, Decimal, Decimal]:
    repriced = max(repriced, ZERO).quantize(PRICE_PLACES)
    return verdict, repriced, _haircut(side, price, repriced, qty)


def fill_judge(
    *, side: str, price: Decimal, qty: Decimal, bar: Bar | None, terms: FillTerms
) -> FillJudgement:
    """The verdict on one fill (side buy|sell, qty > 0) against its minute bar."""
    if bar is None:
        return FillJudgement(NO_BAR, None, None, ZERO)
    participation = (qty / bar.volume).quantize(RATIO_PLACES) if bar.volume > 0 else None
    widen = terms.price_tolerance_bps / BPS
    buy = side == "buy"
    if price < bar.low * (1 - widen) or price > bar.high * (1 + widen):
        excess = price - bar.high if price > bar.high else bar.low - price
        worst = max(price, bar.high) + excess if buy else min(price, bar.low) - excess
        verdict, repriced, haircut = _flagged(side, price, qty, PRICE_OUTSIDE_BAR, worst)
        return FillJudgement(verdict, participation, repriced, haircut)
    if participation is None or participation > terms.max_participation:
        worst = max(price, bar.high) if buy else min(price, bar.low)
        verdict, repriced, haircut = _flagged(side, price, qty, PARTICIPATION_HIGH, worst)
        return FillJudgement(verdict, participation, repriced, haircut)
    return FillJudgement(OK, participation, None, ZERO)
