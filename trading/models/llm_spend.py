"""LLM spend: what each review reserved before its call and settled after it, and the running
spend per day (scope `all`) and per day and strategy (scope `strategy:<id>`) that the caps in
LLM_BUDGET_USD_* bound (trading/services/llm_budget.py)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from torghut_site.db import choices_constraint
from trading.models.llm import LLMDecisionReview
from trading.models.strategies import Strategy


class LLMSpendDay(models.Model):
    """Spend of one UTC day in one scope: reserved estimates plus settled corrections. Moved only
    by compare-and-set `UPDATE ... SET spent_usd = spent_usd + x WHERE spent_usd + x <= cap`."""

    day = models.DateField()
    scope = models.CharField(max_length=64, help_text="`all` or `strategy:<id>`")
    strategy = models.ForeignKey(
        Strategy, on_delete=models.PROTECT, null=True, blank=True, related_name="llm_spend_days"
    )
    spent_usd = models.DecimalField(max_digits=18, decimal_places=8, default=0)
    reviews = models.PositiveIntegerField(default=0, help_text="calls reserved")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "LLM spend day"
        verbose_name_plural = "LLM spend days"
        db_table = "llm_spend_days"
        ordering = ["-day", "scope"]
        constraints = [
            models.UniqueConstraint(fields=["day", "scope"], name="llm_spend_day_scope_unique"),
            models.CheckConstraint(condition=Q(spent_usd__gte=0), name="llm_spend_nonnegative"),
            models.CheckConstraint(
                condition=Q(scope="all", strategy__isnull=True)
                | Q(scope__startswith="strategy:", strategy__isnull=False),
                name="llm_spend_scope_matches_strategy",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.scope}: {self.spent_usd} USD"


class ReservationStatus(models.TextChoices):
    RESERVED = "reserved", "reserved"
    SETTLED = "settled", "settled from the reported usage"
    SWEPT = "swept", "settled by the sweep at the reserved amount"


class LLMSpendReservation(models.Model):
    """One call's reservation; `actual_usd` is set when it is settled (or swept). A review
    reserves its own call (`call='review'`) and may reserve more: the DSPy shadow call
    (`dspy_shadow`) and a stability probe (`probe`), one row each."""

    review = models.ForeignKey(
        LLMDecisionReview, on_delete=models.CASCADE, related_name="spend_reservations"
    )
    call = models.CharField(max_length=32, default="review")
    day = models.DateField()
    strategy = models.ForeignKey(Strategy, on_delete=models.PROTECT, related_name="+")
    model = models.CharField(max_length=128)
    estimated_usd = models.DecimalField(max_digits=18, decimal_places=8)
    actual_usd = models.DecimalField(max_digits=18, decimal_places=8, null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=ReservationStatus.choices, default=ReservationStatus.RESERVED
    )
    created_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "LLM spend reservation"
        verbose_name_plural = "LLM spend reservations"
        db_table = "llm_spend_reservations"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["review", "call"], name="llm_reservation_call_unique"),
            choices_constraint("status", ReservationStatus, "llm_reservation_status_valid"),
            models.CheckConstraint(
                condition=Q(status="reserved", actual_usd__isnull=True, settled_at__isnull=True)
                | (
                    ~Q(status="reserved")
                    & Q(actual_usd__isnull=False, settled_at__isnull=False, actual_usd__gte=0)
                ),
                name="llm_reservation_settled_has_actual",
            ),
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(status="reserved"),
                name="llm_reservation_open_idx",
            )
        ]

    def __str__(self) -> str:
        return f"reservation of review {self.review_id} ({self.call}): {self.status}"
