"""LLM spend budgets: reserve a review's estimated cost before its call, settle it from the
reported usage after, sweep reservations a crashed worker left behind.

Caps (LLM_BUDGET_USD_PER_REVIEW / _PER_DAY / _PER_STRATEGY_PER_DAY, unset = no cap) bound the
`LLMSpendDay` rows, moved only by compare-and-set `UPDATE ... WHERE spent_usd <= cap - cost` with
a row-count check (../shared/CONVENTIONS.md §5), scope `all` first, then the strategy's, in one
transaction: two workers can never both take the last dollar. The estimate is conservative
(prompt tokens as UTF-8 bytes / 3 + 8 per message, plus the full `max_tokens` of output), so a
call goes over a cap only when its reported usage exceeds its estimate, and then the next
reservation is refused: at most one call over the cap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from trading.llm.usage import CallUsage
from trading.metrics import (
    LLM_BUDGET_EXCEEDED,
    LLM_COST_PER_1000_REVIEWS,
    LLM_SPEND_TODAY,
    LLM_SPEND_TODAY_BY_SCOPE,
    LLM_SPEND_USD,
)
from trading.models import LLMDecisionReview, LLMSpendDay, LLMSpendReservation
from trading.models.llm_spend import ReservationStatus

USD_PLACES = Decimal("0.00000001")
# a reservation whose review's deadline passed this long ago has no call in flight any more
SWEEP_GRACE = timedelta(seconds=60)


@dataclass(frozen=True)
class BudgetDecision:
    allowed: bool
    reason: str = ""  # "" or llm_budget_exceeded:<per_review|per_day|per_strategy_per_day>
    estimated_usd: Decimal = Decimal(0)
    reservation_id: int | None = None


def _caps() -> tuple[Decimal | None, Decimal | None, Decimal | None]:
    return (
        settings.LLM_BUDGET_USD_PER_REVIEW,
        settings.LLM_BUDGET_USD_PER_DAY,
        settings.LLM_BUDGET_USD_PER_STRATEGY_PER_DAY,
    )


def model_price(model: str) -> dict[str, Decimal] | None:
    """The model's prices; a model without one (a provider's fallback answering under another
    id) is charged the dearest configured price. None when no price is configured at all."""
    prices: dict[str, dict[str, Decimal]] = settings.LLM_MODEL_PRICES
    if model in prices:
        return prices[model]
    if not prices:
        return None
    return {
        "input_per_1k": max(p["input_per_1k"] for p in prices.values()),
        "output_per_1k": max(p["output_per_1k"] for p in prices.values()),
    }


def cost_usd(model: str, *, tokens_prompt: int, tokens_completion: int) -> Decimal:
    price = model_price(model)
    if price is None:
        return Decimal(0)
    cost = (
        price["input_per_1k"] * tokens_prompt + price["output_per_1k"] * tokens_completion
    ) / 1000
    return cost.quantize(USD_PLACES)


def calls_cost_usd(calls: Sequence[CallUsage]) -> Decimal:
    """The cost of a review's calls, each at its own model's price."""
    return sum(
        (
            cost_usd(c.model, tokens_prompt=c.tokens_prompt, tokens_completion=c.tokens_completion)
            for c in calls
        ),
        Decimal(0),
    )


def estimate_prompt_tokens(messages: list[dict[str, str]]) -> int:
    size = sum(len(str(m.get("content", "")).encode()) for m in messages)
    return math.ceil(size / 3) + 8 * len(messages)


def _ledger_on() -> bool:
    return bool(settings.LLM_MODEL_PRICES) or any(cap is not None for cap in _caps())


class _Refused(Exception):
    def __init__(self, scope: str) -> None:
        self.scope = scope


def _take(
    day: date, scope: str, cost: Decimal, cap: Decimal | None, name: str, *, review: int
) -> None:
    rows = LLMSpendDay.objects.filter(day=day, scope=scope)
    if cap is not None:
        rows = rows.filter(spent_usd__lte=cap - cost)
    if not rows.update(spent_usd=F("spent_usd") + cost, reviews=F("reviews") + review):
        raise _Refused(name)


def budget_reserve(
    *,
    review: LLMDecisionReview,
    strategy_id: int,
    model: str,
    messages: list[dict[str, str]],
    max_tokens: int,
    now: datetime | None = None,
    call: str = "review",
    calls: int = 1,
) -> BudgetDecision:
    """Reserve the estimated cost of this review's calls under every cap, or refuse with the
    first cap it would exceed (nothing is written then). `messages` holds every call's messages
    (a committee's roles one after the other), each call may write `max_tokens`. `call` names a
    further call of the same review (`dspy_shadow`, `probe`): its own reservation, not counted as
    a review."""
    if not _ledger_on():
        return BudgetDecision(True)
    now = now or timezone.now()
    per_review, per_day, per_strategy = _caps()
    estimate = cost_usd(
        model,
        tokens_prompt=estimate_prompt_tokens(messages),
        tokens_completion=max_tokens * calls,
    )
    if per_review is not None and estimate > per_review:
        return _refused("per_review", estimate)
    day = now.date()
    scope = f"strategy:{strategy_id}"
    try:
        with transaction.atomic():
            LLMSpendDay.objects.bulk_create(
                [
                    LLMSpendDay(day=day, scope="all"),
                    LLMSpendDay(day=day, scope=scope, strategy_id=strategy_id),
                ],
                ignore_conflicts=True,
            )
            counted = 1 if call == "review" else 0
            _take(day, "all", estimate, per_day, "per_day", review=counted)
            _take(day, scope, estimate, per_strategy, "per_strategy_per_day", review=counted)
            reservation = LLMSpendReservation.objects.create(
                review=review, call=call, day=day, strategy_id=strategy_id, model=model,
                estimated_usd=estimate,
            )  # fmt: skip
    except _Refused as refused:
        return _refused(refused.scope, estimate)
    _publish(day, strategy_id)
    return BudgetDecision(True, estimated_usd=estimate, reservation_id=reservation.pk)


def _refused(scope: str, estimate: Decimal) -> BudgetDecision:
    LLM_BUDGET_EXCEEDED.labels(scope=scope).inc()
    return BudgetDecision(False, f"llm_budget_exceeded:{scope}", estimate)


def _adjust(reservation: LLMSpendReservation, delta: Decimal) -> None:
    if delta:
        for scope in ("all", f"strategy:{reservation.strategy_id}"):
            LLMSpendDay.objects.filter(day=reservation.day, scope=scope).update(
                spent_usd=F("spent_usd") + delta
            )


def budget_settle(
    *,
    review_id: int,
    called: bool,
    model: str = "",
    tokens_prompt: int = 0,
    tokens_completion: int = 0,
    call: str = "review",
    calls: Sequence[CallUsage] | None = None,
) -> Decimal | None:
    """Settle the reservation of the review's `call`: from the reported usage (`calls`, each at
    its model's price, or `model` and the token counts), or at the reserved amount when a call
    was made (or may have been) but reported no usage. `called=False` (the guardrail or the
    circuit stopped it first) frees the reservation. Returns the settled cost, or None when
    there was no open reservation (none made, or the sweep got there first)."""
    reservation = LLMSpendReservation.objects.filter(
        review_id=review_id, call=call, status=ReservationStatus.RESERVED
    ).first()
    if reservation is None:
        return None
    if calls is None:
        calls = [CallUsage(call, model, tokens_prompt, tokens_completion)]
    if not called:
        actual = Decimal(0)
    elif sum(c.tokens_prompt + c.tokens_completion for c in calls) == 0:
        actual = reservation.estimated_usd
    else:
        actual = calls_cost_usd(calls)
    with transaction.atomic():
        won = LLMSpendReservation.objects.filter(
            pk=reservation.pk, status=ReservationStatus.RESERVED
        ).update(status=ReservationStatus.SETTLED, actual_usd=actual, settled_at=timezone.now())
        if not won:
            return None
        _adjust(reservation, actual - reservation.estimated_usd)
    LLM_SPEND_USD.labels(model=reservation.model).inc(float(actual))
    _publish(reservation.day, reservation.strategy_id)
    return actual


def budget_sweep(*, now: datetime | None = None) -> list[int]:
    """Settle, at their reserved amount, reservations whose review's deadline passed
    SWEEP_GRACE ago without a settle (a worker crashed between reserve and settle): the
    money may have been spent, so nothing is freed. Returns the reservation ids."""
    now = now or timezone.now()
    stale = LLMSpendReservation.objects.filter(
        status=ReservationStatus.RESERVED, review__deadline__lte=now - SWEEP_GRACE
    ).order_by("pk")[:500]
    swept: list[int] = []
    for reservation in stale:
        won = LLMSpendReservation.objects.filter(
            pk=reservation.pk, status=ReservationStatus.RESERVED
        ).update(status=ReservationStatus.SWEPT, actual_usd=F("estimated_usd"), settled_at=now)
        if won:
            LLM_SPEND_USD.labels(model=reservation.model).inc(float(reservation.estimated_usd))
            swept.append(reservation.pk)
    return swept


def cost_per_1000_reviews(row: LLMSpendDay) -> Decimal | None:
    if not row.reviews:
        return None
    return (row.spent_usd * 1000 / row.reviews).quantize(Decimal("0.0001"))


def _publish(day: date, strategy_id: int) -> None:
    """Today's spend: over all strategies, and by scope (`all` or the strategy's name: the
    configured strategies, a bounded set of label values)."""
    if day != timezone.now().date():
        return
    scopes = ("all", f"strategy:{strategy_id}")
    for row in LLMSpendDay.objects.filter(day=day, scope__in=scopes).select_related("strategy"):
        if row.scope == "all":
            LLM_SPEND_TODAY.set(float(row.spent_usd))
            per_1000 = cost_per_1000_reviews(row)
            LLM_COST_PER_1000_REVIEWS.set(float(per_1000 or 0))
            LLM_SPEND_TODAY_BY_SCOPE.labels(scope="all").set(float(row.spent_usd))
        elif row.strategy is not None:
            scope = f"strategy:{row.strategy.name}"
            LLM_SPEND_TODAY_BY_SCOPE.labels(scope=scope).set(float(row.spent_usd))
