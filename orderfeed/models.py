"""Broker order events as they arrived on the order feed (docs/compatibility.md#order-feed)."""

from __future__ import annotations

from django.db import models

from torghut_site.db import choices_constraint
from trading.models import Execution, TradeDecision


class EventOutcome(models.TextChoices):
    APPLIED = "applied", "applied to the execution"
    UNCHANGED = "unchanged", "nothing new for the execution"
    OUT_OF_ORDER = "out_of_order", "older than what the execution already applied"
    AWAITING_EXECUTION = "awaiting_execution", "our decision, no execution recorded yet"
    UNKNOWN_ORDER = "unknown_order", "an order we never sent"


class OrderEvent(models.Model):
    """One trade update, stored exactly once whatever Kafka redelivers.

    Two identities guard against duplicates: the event's content (`event_fingerprint`, sha256
    of its identity fields — the same update produced twice) and its place in the log
    (`source_topic/partition/offset` — the same record consumed twice).
    """

    event_fingerprint = models.CharField(max_length=64)
    source_topic = models.CharField(max_length=249)
    source_partition = models.IntegerField()
    source_offset = models.BigIntegerField()
    account_label = models.CharField(max_length=64)
    feed_seq = models.BigIntegerField(null=True, blank=True)
    event_ts = models.DateTimeField(null=True, blank=True)
    symbol = models.CharField(max_length=32, blank=True)
    broker_order_id = models.CharField(max_length=64, blank=True)
    client_order_id = models.CharField(max_length=64, blank=True)
    event_type = models.CharField(max_length=32, blank=True)
    status = models.CharField(max_length=24, blank=True)
    qty = models.DecimalField(max_digits=24, decimal_places=8, null=True, blank=True)
    filled_qty = models.DecimalField(max_digits=24, decimal_places=8, null=True, blank=True)
    avg_fill_price = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    raw_event = models.JSONField(default=dict)
    # No database FOREIGN KEY on these two links (Django still emulates SET_NULL on delete). The
    # ingest writes them in the transaction that holds the execution (and the decision it
    # follows) locked FOR UPDATE, executions and decisions are never deleted (read-only admin,
    # no delete path), and the deferred per-row RI checks were 13% of the consumer's database
    # time (bench/profile_orderfeed.py). The execution link keeps its index
    # (`order_events_for_execution`, the admin's count); nothing reads events by decision.
    execution = models.ForeignKey(
        Execution,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="order_events",
        db_constraint=False,
    )
    decision = models.ForeignKey(
        TradeDecision,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    outcome = models.CharField(max_length=24, choices=EventOutcome.choices)
    received_at = models.DateTimeField()
    produced_at = models.DateTimeField(null=True, blank=True, help_text="Kafka record time")

    class Meta:
        # newest first by the primary key (ids grow with arrival; received_at is per batch): the
        # primary key index serves it. received_at has a BRIN index (migration 0004, Postgres)
        # for the time-window reads (dashboard throughput, filters).
        ordering = ["-pk"]
        constraints = [
            # a constraint, not `unique=True`: the field option also builds a second
            # (varchar_pattern_ops) index for LIKE that no query uses and every insert pays for
            models.UniqueConstraint(
                fields=["event_fingerprint"], name="order_event_fingerprint_unique"
            ),
            models.UniqueConstraint(
                fields=["source_topic", "source_partition", "source_offset"],
                name="order_event_source_unique",
            ),
            choices_constraint("outcome", EventOutcome, "order_event_outcome_valid"),
        ]
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=models.Q(outcome="unknown_order"),
                name="order_event_unknown_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.symbol} {self.status} [{self.outcome}]"
