"""State of the simulated broker. These tables play the broker's side: torghut's own books
(decisions, executions) never read them except through the `SimulatedBroker` adapter."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import F, Q

from torghut_site.db import choices_constraint


class SimOrderStatus(models.TextChoices):
    ACCEPTED = "accepted", "accepted"
    PARTIALLY_FILLED = "partially_filled", "partially filled"
    FILLED = "filled", "filled"
    CANCELED = "canceled", "canceled"
    EXPIRED = "expired", "expired"


SIM_FINAL = frozenset({"filled", "canceled", "expired"})
SIM_TRANSITIONS = {
    "accepted": frozenset({"partially_filled", "filled", "canceled", "expired"}),
    "partially_filled": frozenset({"filled", "canceled", "expired"}),
    "filled": frozenset(),
    "canceled": frozenset(),
    "expired": frozenset(),
}


class SimAccount(models.Model):
    account_label = models.CharField(max_length=64, unique=True)
    cash = models.DecimalField(max_digits=20, decimal_places=6)
    starting_cash = models.DecimalField(max_digits=20, decimal_places=6)
    update_seq = models.BigIntegerField(default=0, help_text="last trade update sequence number")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"sim account {self.account_label}"


class SimOrder(models.Model):
    account = models.ForeignKey(SimAccount, on_delete=models.CASCADE, related_name="orders")
    order_id = models.UUIDField(default=uuid.uuid4, unique=True)
    client_order_id = models.CharField(max_length=48)
    symbol = models.CharField(max_length=32)
    side = models.CharField(max_length=4)
    order_type = models.CharField(max_length=16)
    time_in_force = models.CharField(max_length=8)
    qty = models.DecimalField(max_digits=24, decimal_places=8)
    filled_qty = models.DecimalField(max_digits=24, decimal_places=8, default=Decimal(0))
    filled_avg_price = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    limit_price = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    stop_price = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    stop_triggered = models.BooleanField(default=False)
    status = models.CharField(
        max_length=20, choices=SimOrderStatus.choices, default=SimOrderStatus.ACCEPTED
    )
    # the market time when the order arrived: only a later price can fill it (no look-ahead)
    market_ts_at_submit = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    filled_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # as at Alpaca, a client order id stays taken even after the order is cancelled
            models.UniqueConstraint(
                fields=["account", "client_order_id"], name="simorder_client_id_unique"
            ),
            choices_constraint("status", SimOrderStatus, "simorder_status_valid"),
            models.CheckConstraint(condition=Q(qty__gt=0), name="simorder_qty_positive"),
            models.CheckConstraint(
                condition=Q(filled_qty__gte=0) & Q(filled_qty__lte=F("qty")),
                name="simorder_filled_within_qty",
            ),
            models.CheckConstraint(
                condition=Q(side__in=["buy", "sell"]), name="simorder_side_valid"
            ),
        ]
        indexes = [
            # observe_prices: the open orders of an account for a symbol
            models.Index(
                fields=["account", "symbol"],
                condition=Q(status__in=["accepted", "partially_filled"]),
                name="simorder_open_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.qty} {self.symbol} [{self.status}]"


class SimPosition(models.Model):
    account = models.ForeignKey(SimAccount, on_delete=models.CASCADE, related_name="positions")
    symbol = models.CharField(max_length=32)
    qty = models.DecimalField(max_digits=24, decimal_places=8)
    avg_entry_price = models.DecimalField(max_digits=20, decimal_places=6)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "symbol"], name="simposition_unique")
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.qty}"


class SimMarketPrice(models.Model):
    symbol = models.CharField(max_length=32, unique=True)
    price = models.DecimalField(max_digits=20, decimal_places=6)
    as_of = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.symbol} {self.price} @ {self.as_of}"


class SimTradeUpdate(models.Model):
    """Outbox of Alpaca-shaped `trade_updates` messages, in order per account."""

    account = models.ForeignKey(SimAccount, on_delete=models.CASCADE, related_name="trade_updates")
    seq = models.BigIntegerField()
    event = models.CharField(max_length=20)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "seq"], name="simtradeupdate_seq_unique")
        ]
        indexes = [
            models.Index(
                fields=["account", "seq"],
                condition=Q(published_at__isnull=True),
                name="simupdate_unpublished_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} #{self.seq}"
