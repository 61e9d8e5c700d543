"""Numbers the reviewer states, checked against the evidence it was shown.

Pure functions, no I/O. The evidence is the decision's request snapshot (`market.price`, the
signal price the decision was made at, trading/llm/request.py) and the deterministic order (side,
quantity, quantity step). Every number an answer states is checked, whatever its verdict, and so
is every number a committee member states:

- `limit_price` lies in the band [p × (1 − b), p × (1 + b)] around the signal price p, with b =
  LLM_EVIDENCE_PRICE_BAND_BPS / 10,000, and on the passive side of p: a buy limit not above p, a
  sell limit not below it (a reviewer may make an order less aggressive, never more).
- `stop_price` lies in the same band and strictly on the protective side of p: below it for a buy
  (a stop under the long the buy opens), above it for a sell. A stop at p protects nothing.
- `qty_multiplier` is at most 1 (the schema already requires it to be > 0).
- `adjusted_qty` is at most the deterministic quantity.
- When both are stated, `adjusted_qty` is within one quantity step of `qty_multiplier` × the
  deterministic quantity (strictly less than one step apart, so flooring to the step is fine).
- A price stated when the snapshot has no usable signal price has nothing to be checked against,
  and is unsupported too.

Each failure is a reason code `llm_number_unsupported:<check>` (a member's is
`llm_number_unsupported:<role>.<check>`). The engine rejects an answer with any reason: the fail
mode decides, with the deterministic order unchanged or a veto (`evidence_outcome`), so an
invented number never reaches an order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from trading.llm.policy import DeterministicOrder, PolicyOutcome, fail_outcome

PREFIX = "llm_number_unsupported:"
BPS = Decimal(10_000)


@dataclass(frozen=True)
class PriceBand:
    reference: Decimal
    low: Decimal
    high: Decimal


def signal_price(snapshot: dict[str, Any]) -> Decimal | None:
    """The price the decision saw (`market.price`), or None when the snapshot has none usable."""
    market = snapshot.get("market")
    raw = market.get("price") if isinstance(market, dict) else None
    if raw is None or isinstance(raw, bool):
        return None
    try:
        value = Decimal(str(raw))
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() and value > 0 else None


def price_band(snapshot: dict[str, Any], band_bps: Decimal) -> PriceBand | None:
    reference = signal_price(snapshot)
    if reference is None:
        return None
    width = reference * band_bps / BPS
    return PriceBand(reference, reference - width, reference + width)


def _limit_reasons(price: Decimal, side: str, band: PriceBand | None) -> list[str]:
    if band is None:
        return ["limit_price_no_signal_price"]
    reasons = []
    if not band.low <= price <= band.high:
        reasons.append("limit_price_outside_band")
    if price > band.reference if side == "buy" else price < band.reference:
        reasons.append("limit_price_wrong_side")
    return reasons


def _stop_reasons(price: Decimal, side: str, band: PriceBand | None) -> list[str]:
    if band is None:
        return ["stop_price_no_signal_price"]
    reasons = []
    if not band.low <= price <= band.high:
        reasons.append("stop_price_outside_band")
    if price >= band.reference if side == "buy" else price <= band.reference:
        reasons.append("stop_price_wrong_side")
    return reasons


def _qty_reasons(
    adjusted: Decimal | None, multiplier: Decimal | None, order: DeterministicOrder
) -> list[str]:
    reasons = []
    if multiplier is not None and multiplier > 1:
        reasons.append("qty_multiplier_above_one")
    if adjusted is not None and adjusted > order.qty:
        reasons.append("adjusted_qty_above_deterministic")
    if (
        adjusted is not None
        and multiplier is not None
        and abs(adjusted - multiplier * order.qty) >= order.qty_step
    ):
        reasons.append("qty_multiplier_inconsistent")
    return reasons


def _stated(source: Any, name: str) -> Decimal | None:
    value = getattr(source, name, None)
    return value if isinstance(value, Decimal) else None


def _number_reasons(source: Any, order: DeterministicOrder, band: PriceBand | None) -> list[str]:
    adjusted, multiplier = _stated(source, "adjusted_qty"), _stated(source, "qty_multiplier")
    reasons = _qty_reasons(adjusted, multiplier, order)
    limit = _stated(source, "limit_price")
    if limit is not None:
        reasons.extend(_limit_reasons(limit, order.side, band))
    stop = _stated(source, "stop_price")
    if stop is not None:
        reasons.extend(_stop_reasons(stop, order.side, band))
    return reasons


def check_numbers(
    response: Any, order: DeterministicOrder, snapshot: dict[str, Any], band_bps: Decimal
) -> list[str]:
    """The reason codes of every number `response` (a ReviewResponse or a DspyReviewOutput, with
    its committee) states that the evidence does not support; [] when all are supported."""
    band = price_band(snapshot, band_bps)
    reasons = [PREFIX + r for r in _number_reasons(response, order, band)]
    for member in getattr(response, "committee", None) or []:
        reasons.extend(f"{PREFIX}{member.role}.{r}" for r in _number_reasons(member, order, band))
    return reasons


def evidence_outcome(
    order: DeterministicOrder, *, fail_mode: str, reasons: list[str]
) -> PolicyOutcome:
    """The fail mode's outcome for a rejected answer, with every reason: the deterministic order
    unchanged (pass_through) or a veto; never the answer's numbers."""
    outcome = fail_outcome(order, fail_mode=fail_mode, reason=reasons[0])
    suffix = "_pass_through" if outcome.effect == "pass" else ""
    return replace(outcome, reasons=tuple(f"{reason}{suffix}" for reason in reasons))
