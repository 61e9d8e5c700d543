from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from torghut_site.db import choices_constraint
from trading.brokers.base import ORDER_STATUSES
from trading.models.decisions import OrderSide, TradeDecision
from trading.models.strategies import Strategy


class ExecutionStatus(models.TextChoices):
    NEW = "new", "new"
    ACCEPTED = "accepted", "accepted"
    PENDING_NEW = "pending_new", "pending new"
    PARTIALLY_FILLED = "partially_filled", "partially filled"
    FILLED = "filled", "filled"
    DONE_FOR_DAY = "done_for_day", "done for day"
    CANCELED = "canceled", "canceled"
    EXPIRED = "expired", "expired"
    REPLACED = "replaced", "replaced"
    PENDING_CANCEL = "pending_cancel", "pending cancel"
    PENDING_REPLACE = "pending_replace", "pending replace"
    REJECTED = "rejected", "rejected"
    SUSPENDED = "suspended", "suspended"
    STOPPED = "stopped", "stopped"
    CALCULATED = "calculated", "calculated"
    ACCEPTED_FOR_BIDDING = "accepted_for_bidding", "accepted for bidding"


assert set(ExecutionStatus.values) == set(ORDER_STATUSES)


class Execution(models.Model):
    """An order at the broker, as we know it. One per client order id per lane."""

    decision = models.ForeignKey(
        TradeDecision, on_delete=models.SET_NULL, null=True, blank=True, related_name="executions"
    )
    account_label = models.CharField(max_length=64)
    broker = models.CharField(max_length=16)
    broker_order_id = models.CharField(max_length=64)
    client_order_id = models.CharField(max_length=48)
    symbol = models.CharField(max_length=32)
    side = models.CharField(max_length=4, choices=OrderSide.choices)
    order_type = models.CharField(max_length=16)
    time_in_force = models.CharField(max_length=8)
    submitted_qty = models.DecimalField(max_digits=24, decimal_places=8)
    filled_qty = models.DecimalField(max_digits=24, decimal_places=8, default=0)
    avg_fill_price = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    limit_price = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    status = models.CharField(max_length=24, choices=ExecutionStatus.choices)
    adopted = models.BooleanField(default=False, help_text="found at the broker by client order id")
    unknown_order = models.BooleanField(default=False, help_text="an order we have no decision for")
    raw_order = models.JSONField(default=dict)
    submitted_at = models.DateTimeField(null=True, blank=True)
    last_update_at = models.DateTimeField(null=True, blank=True)
    order_feed_last_event_ts = models.DateTimeField(null=True, blank=True)
    order_feed_last_seq = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["account_label", "broker_order_id"], name="execution_lane_order_unique"
            ),
            models.UniqueConstraint(
                fields=["account_label", "client_order_id"], name="execution_lane_client_unique"
            ),
            choices_constraint("status", ExecutionStatus, "execution_status_valid"),
            choices_constraint("side", OrderSide, "execution_side_valid"),
            models.CheckConstraint(condition=Q(submitted_qty__gt=0), name="execution_qty_positive"),
            models.CheckConstraint(
                condition=Q(filled_qty__gte=0) & Q(filled_qty__lte=F("submitted_qty")),
                name="execution_filled_within_qty",
            ),
        ]
        indexes = [
            # reconciliation: every non-final execution of a lane
            models.Index(
                fields=["account_label", "updated_at"],
                condition=~Q(status__in=["filled", "canceled", "expired", "rejected", "replaced"]),
                name="execution_open_idx",
            ),
            models.Index(fields=["symbol", "-created_at"], name="execution_symbol_recent_idx"),
            # trading.services.accounts._filled_since: a lane's executions changed since an
            # instant (every status: a filled order is final)
            models.Index(fields=["account_label", "updated_at"], name="execution_lane_updated_idx"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.side} {self.submitted_qty} {self.symbol} [{self.status}] {self.client_order_id}"
        )


class ExecutionTransition(models.Model):
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=24)
    to_status = models.CharField(max_length=24)
    filled_qty = models.DecimalField(max_digits=24, decimal_places=8, default=0)
    source = models.CharField(max_length=24, help_text="submit | reconcile | order_feed | cancel")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.from_status} -> {self.to_status} ({self.source})"


class ExecutionTcaMetric(models.Model):
    """Transaction cost analysis of one execution: fill versus arrival price."""

    execution = models.OneToOneField(Execution, on_delete=models.CASCADE, related_name="tca")
    decision = models.ForeignKey(
        TradeDecision, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    strategy = models.ForeignKey(
        Strategy, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    account_label = models.CharField(max_length=64)
    symbol = models.CharField(max_length=32)
    side = models.CharField(max_length=4)
    arrival_price = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    avg_fill_price = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    filled_qty = models.DecimalField(max_digits=24, decimal_places=8, default=0)
    signed_qty = models.DecimalField(max_digits=24, decimal_places=8, default=0)
    slippage_bps = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    shortfall_notional = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        verbose_name = "TCA metric"
        verbose_name_plural = "TCA metrics"
        indexes = [models.Index(fields=["symbol", "-computed_at"], name="tca_symbol_recent_idx")]

    def __str__(self) -> str:
        return f"TCA {self.symbol} {self.slippage_bps} bps"
