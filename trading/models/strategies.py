from __future__ import annotations

from django.db import models
from django.db.models import Q

from torghut_site.db import choices_constraint


class StrategyType(models.TextChoices):
    LEGACY_MACD_RSI = "legacy_macd_rsi", "legacy MACD/RSI"
    INTRADAY_TSMOM = "intraday_tsmom", "intraday time-series momentum"


class StrategySource(models.TextChoices):
    CATALOG = "catalog", "strategy catalog file"
    ADMIN = "admin", "admin"
    PROMOTION = "promotion", "autonomy promotion"


class UncertaintyAction(models.TextChoices):
    """The research loop's gate-7 (uncertainty calibration) action for the promoted run; the
    trade cycle's uncertainty gate applies it (`trading.gates.gate_uncertainty`)."""

    PASS = "pass", "pass"
    DEGRADE = "degrade", "degrade: half size, participation at most 0.05"
    ABSTAIN = "abstain", "abstain: no risk-increasing order"
    FAIL = "fail", "fail: reduce-only"


class Strategy(models.Model):
    """A configured strategy instance: which plugin, on which symbols, with which limits."""

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=False)
    strategy_type = models.CharField(max_length=40, choices=StrategyType.choices)
    version = models.CharField(max_length=40, default="1.0.0")
    base_timeframe = models.CharField(max_length=16, default="1Min")
    universe_symbols = models.JSONField(
        default=list, blank=True, help_text="empty: every symbol of the universe"
    )
    account_labels = models.JSONField(
        default=list, blank=True, help_text="empty: every account lane"
    )
    params = models.JSONField(default=dict, blank=True)
    priority = models.IntegerField(default=100)
    max_position_pct_equity = models.DecimalField(
        max_digits=8, decimal_places=6, null=True, blank=True
    )
    max_notional_per_trade = models.DecimalField(
        max_digits=20, decimal_places=6, null=True, blank=True
    )
    source = models.CharField(
        max_length=16, choices=StrategySource.choices, default=StrategySource.ADMIN
    )
    catalog_hash = models.CharField(max_length=64, blank=True, default="")
    uncertainty_action = models.CharField(
        max_length=16, choices=UncertaintyAction.choices, default=UncertaintyAction.PASS
    )
    # provenance, written only by the autonomy promotion that applied this configuration
    # (`autonomy.services.strategies.strategy_apply`): the id of its `research_promotions` row
    # and the research candidate's id. Plain values, no foreign key: trading sits below autonomy.
    # The catalog loader and an admin change of what is traded clear them (the row is then no
    # longer what the promotion applied); every decision copies them (`TradeDecision`).
    promotion_ref = models.BigIntegerField(
        null=True, blank=True, help_text="id of the autonomy promotion that applied this row"
    )
    promotion_candidate_id = models.CharField(
        max_length=64, blank=True, default="", help_text="research candidate that promotion chose"
    )
    # per-strategy circuit breaker, persisted so every worker agrees on it
    consecutive_errors = models.PositiveIntegerField(default=0)
    degraded_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "strategies"
        ordering = ["priority", "name"]
        # checked by `trading.services.strategies` for every admin add, change and delete;
        # the catalog loader and the autonomy promotion write rows through their own services
        permissions = [
            (
                "promote_strategy",
                "Can add, delete or change a strategy's risk-bearing fields (promotion)",
            ),
            ("change_live_strategy", "Can change a strategy that trades on a live account lane"),
        ]
        constraints = [
            choices_constraint("strategy_type", StrategyType, "strategy_type_valid"),
            choices_constraint("source", StrategySource, "strategy_source_valid"),
            choices_constraint(
                "uncertainty_action", UncertaintyAction, "strategy_uncertainty_action_valid"
            ),
            models.CheckConstraint(
                condition=Q(max_position_pct_equity__isnull=True)
                | (Q(max_position_pct_equity__gt=0) & Q(max_position_pct_equity__lte=1)),
                name="strategy_max_pct_in_0_1",
            ),
            models.CheckConstraint(
                condition=Q(max_notional_per_trade__isnull=True) | Q(max_notional_per_trade__gt=0),
                name="strategy_max_notional_positive",
            ),
            # provenance is both values or neither, and only on a row a promotion wrote
            models.CheckConstraint(
                condition=Q(promotion_ref__isnull=True, promotion_candidate_id="")
                | Q(
                    source=StrategySource.PROMOTION,
                    promotion_ref__isnull=False,  # `NULL > 0` alone would pass the CHECK
                    promotion_ref__gt=0,
                    promotion_candidate_id__regex=r"^\S+$",
                ),
                name="strategy_promotion_provenance",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.strategy_type}@{self.version})"
