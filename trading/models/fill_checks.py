"""One paper or simulated fill checked against the market's minute bar (`trading.fill_realism`).

The fill is an execution's final cumulative fill (`filled_qty` at `avg_fill_price`, as the books
count it, `trading.selectors.books`): one row per execution, written once by
`trading.services.fill_checks.fill_check_run` and never changed.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from torghut_site.db import choices_constraint
from trading.models.executions import Execution


class FillVerdict(models.TextChoices):
    OK = "ok", "inside the bar, participation within the limit"
    PRICE_OUTSIDE_BAR = "price_outside_bar", "price outside the bar's low-high"
    PARTICIPATION_HIGH = "participation_high", "quantity above the bar-volume participation limit"
    NO_BAR = "no_bar", "no bar for the fill's minute"


class FillCheck(models.Model):
    execution = models.OneToOneField(Execution, on_delete=models.PROTECT, related_name="fill_check")
    account_label = models.CharField(max_length=64)
    symbol = models.CharField(max_length=32)
    side = models.CharField(max_length=4)
    fill_ts = models.DateTimeField(help_text="the broker's fill time (its order's filled_at)")
    price = models.DecimalField(max_digits=20, decimal_places=6)
    qty = models.DecimalField(max_digits=24, decimal_places=8)
    bar_minute = models.DateTimeField(help_text="open time of the minute bar holding fill_ts")
    bar_low = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    bar_high = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    bar_volume = models.DecimalField(max_digits=28, decimal_places=8, null=True, blank=True)
    participation = models.DecimalField(
        max_digits=20,
        decimal_places=8,
        null=True,
        blank=True,
        help_text="qty / bar volume (empty: no bar, or a bar without volume)",
    )
    verdict = models.CharField(max_length=24, choices=FillVerdict.choices)
    repriced_price = models.DecimalField(
        max_digits=20,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="the conservative price of a flagged fill (empty: ok or no bar)",
    )
    haircut_notional = models.DecimalField(
        max_digits=20, decimal_places=6, default=0, help_text="(repriced - price) x qty, >= 0"
    )
    max_participation = models.DecimalField(
        max_digits=10, decimal_places=6, help_text="the limit in force when checked"
    )
    price_tolerance_bps = models.DecimalField(
        max_digits=10, decimal_places=4, help_text="the tolerance in force when checked"
    )
    checked_at = models.DateTimeField()

    class Meta:
        ordering = ["-fill_ts", "-pk"]
        constraints = [
            choices_constraint("verdict", FillVerdict, "fill_check_verdict_valid"),
            models.CheckConstraint(condition=Q(qty__gt=0), name="fill_check_qty_positive"),
            models.CheckConstraint(
                condition=Q(haircut_notional__gte=0), name="fill_check_haircut_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(side__in=["buy", "sell"]), name="fill_check_side_valid"
            ),
            # a flagged fill has its conservative price; ok and no_bar have none
            models.CheckConstraint(
                condition=Q(
                    verdict__in=["price_outside_bar", "participation_high"],
                    repriced_price__isnull=False,
                )
                | Q(verdict__in=["ok", "no_bar"], repriced_price__isnull=True),
                name="fill_check_repriced_iff_flagged",
            ),
        ]
        indexes = [
            # admin list: flagged fills by verdict, newest first
            models.Index(fields=["verdict", "-fill_ts"], name="fill_check_verdict_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.qty} {self.symbol} @ {self.price} [{self.verdict}]"
