from __future__ import annotations

from django.db import models
from django.db.models import Q

from torghut_site.db import choices_constraint
from trading.models.strategies import Strategy


class DecisionStatus(models.TextChoices):
    PLANNED = "planned", "planned"
    PENDING_REVIEW = "pending_review", "pending review"
    REJECTED = "rejected", "rejected"
    SUBMITTING = "submitting", "submitting"
    SUBMITTED = "submitted", "submitted"
    PARTIALLY_FILLED = "partially_filled", "partially filled"
    FILLED = "filled", "filled"
    CANCELED = "canceled", "canceled"
    EXPIRED = "expired", "expired"


class OrderSide(models.TextChoices):
    BUY = "buy", "buy"
    SELL = "sell", "sell"


class OrderType(models.TextChoices):
    MARKET = "market", "market"
    LIMIT = "limit", "limit"
    STOP = "stop", "stop"
    STOP_LIMIT = "stop_limit", "stop limit"


class TimeInForce(models.TextChoices):
    DAY = "day", "day"
    GTC = "gtc", "gtc"
    IOC = "ioc", "ioc"
    FOK = "fok", "fok"


class SubmitAnswer(models.TextChoices):
    """How the broker answered a decision's submit (blank: never sent, e.g. blocked first)."""

    NONE = "", "not sent"
    ACCEPTED = "accepted", "accepted"
    REFUSED = "refused", "refused (a clean broker rejection)"
    # the recovery path: no clean answer, the order was looked up by client order id
    AMBIGUOUS = "ambiguous", "ambiguous answer (timeout, 5xx)"
    DUPLICATE = "duplicate", "duplicate client order id"
    RECOVERED = "recovered", "no answer recorded; settled by reconciliation"


# submits that fell back to the recovery path (counted by the fallback-ratio latch)
FALLBACK_ANSWERS = (SubmitAnswer.AMBIGUOUS, SubmitAnswer.DUPLICATE, SubmitAnswer.RECOVERED)


class TradeDecision(models.Model):
    """What a strategy decided for one signal, every gate's verdict, and where it went.

    `decision_hash` is derived from the signal identity and the strategy (never from sizing), so
    the same signal processed twice — a retried cycle, a second worker — maps to the same row;
    `client_order_id` derives from it, so the broker sees one order however often we retry.
    """

    strategy = models.ForeignKey(Strategy, on_delete=models.PROTECT, related_name="decisions")
    # provenance, copied from the strategy row in the decision's own insert and never changed
    # afterwards (a database trigger refuses it, trading/migrations/0012_decision_provenance.py):
    # the strategy version the decision was computed with, and the autonomy promotion that had
    # applied that configuration (None: a catalog or admin strategy, or a decision older than
    # these columns, whose `strategy_version` is blank)
    strategy_version = models.CharField(max_length=40, blank=True, default="")
    promotion_ref = models.BigIntegerField(null=True, blank=True)
    account_label = models.CharField(max_length=64)
    symbol = models.CharField(max_length=32)
    timeframe = models.CharField(max_length=16)
    event_ts = models.DateTimeField(help_text="time of the signal the decision answers")
    signal_seq = models.BigIntegerField(default=0)
    action = models.CharField(max_length=4, choices=OrderSide.choices)
    qty = models.DecimalField(max_digits=24, decimal_places=8)
    order_type = models.CharField(
        max_length=16, choices=OrderType.choices, default=OrderType.MARKET
    )
    time_in_force = models.CharField(
        max_length=8, choices=TimeInForce.choices, default=TimeInForce.DAY
    )
    limit_price = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    stop_price = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    price = models.DecimalField(
        max_digits=20, decimal_places=6, null=True, blank=True, help_text="arrival price"
    )
    decision_hash = models.CharField(max_length=64)
    client_order_id = models.CharField(max_length=48)
    status = models.CharField(
        max_length=20, choices=DecisionStatus.choices, default=DecisionStatus.PLANNED
    )
    rationale = models.TextField(blank=True, default="")
    decision_json = models.JSONField(default=dict, help_text="inputs: signal, sizing, params")
    gate_verdicts = models.JSONField(
        default=list, help_text="[{gate, passed, reasons, details}] in order"
    )
    risk_reasons = models.JSONField(default=list)
    reject_reason = models.CharField(max_length=80, blank=True, default="", db_index=True)
    review_deadline = models.DateTimeField(null=True, blank=True)
    executed_at = models.DateTimeField(null=True, blank=True)
    submit_answer = models.CharField(
        max_length=12, choices=SubmitAnswer.choices, blank=True, default=SubmitAnswer.NONE
    )
    submit_answered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["account_label", "decision_hash"], name="decision_lane_hash_unique"
            ),
            models.UniqueConstraint(
                fields=["account_label", "client_order_id"], name="decision_lane_client_id_unique"
            ),
            choices_constraint("status", DecisionStatus, "decision_status_valid"),
            choices_constraint("action", OrderSide, "decision_action_valid"),
            choices_constraint("order_type", OrderType, "decision_order_type_valid"),
            choices_constraint("time_in_force", TimeInForce, "decision_tif_valid"),
            models.CheckConstraint(condition=Q(qty__gte=0), name="decision_qty_non_negative"),
            models.CheckConstraint(
                condition=Q(decision_hash__regex=r"^[0-9a-f]{64}$"), name="decision_hash_hex"
            ),
            models.CheckConstraint(
                condition=~Q(status="rejected") | ~Q(reject_reason=""),
                name="decision_rejected_has_reason",
            ),
            choices_constraint("submit_answer", SubmitAnswer, "decision_submit_answer_valid"),
            models.CheckConstraint(
                condition=Q(submit_answer="", submit_answered_at__isnull=True)
                | (~Q(submit_answer="") & Q(submit_answered_at__isnull=False)),
                name="decision_submit_answer_has_time",
            ),
        ]
        indexes = [
            models.Index(fields=["account_label", "-created_at"], name="decision_lane_recent_idx"),
            models.Index(fields=["symbol", "-created_at"], name="decision_symbol_recent_idx"),
            # reconciliation backfill: decisions that may have reached the broker without a row
            models.Index(
                fields=["account_label", "created_at"],
                condition=Q(status="submitting"),
                name="decision_submitting_idx",
            ),
            # every cycle and the review tasks: decisions of a lane waiting for their LLM review
            models.Index(
                fields=["account_label", "created_at"],
                condition=Q(status="pending_review"),
                name="decision_pending_review_idx",
            ),
            # provenance: the decisions a promotion enabled (ops.provenance, from a whitepaper run)
            models.Index(
                fields=["promotion_ref", "-created_at"],
                condition=Q(promotion_ref__isnull=False),
                name="decision_promotion_idx",
            ),
            # the fallback-ratio latch: a lane's latest answered submits
            models.Index(
                fields=["account_label", "-submit_answered_at"],
                condition=~Q(submit_answer=""),
                name="decision_submit_answer_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.qty} {self.symbol} [{self.status}] {self.client_order_id}"


class TradeDecisionTransition(models.Model):
    """Append-only status history of a decision."""

    decision = models.ForeignKey(
        TradeDecision, on_delete=models.CASCADE, related_name="transitions"
    )
    from_status = models.CharField(max_length=20)
    to_status = models.CharField(max_length=20)
    reason = models.CharField(max_length=120, blank=True, default="")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.from_status} -> {self.to_status}"
