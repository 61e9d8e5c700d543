from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from torghut_site.db import choices_constraint


class TradingMode(models.TextChoices):
    PAPER = "paper", "paper"
    LIVE = "live", "live"


class BrokerKind(models.TextChoices):
    SIMULATED = "simulated", "simulated"
    ALPACA = "alpaca", "Alpaca"


class AccountLane(models.Model):
    """One broker account the bot trades (`TRADING_ACCOUNTS_JSON` lanes, or the single default).

    Credentials stay in the environment; this row records the lane's identity and mode.
    """

    label = models.CharField(max_length=64, unique=True)
    mode = models.CharField(max_length=8, choices=TradingMode.choices, default=TradingMode.PAPER)
    broker = models.CharField(max_length=16, choices=BrokerKind.choices)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["label"]
        constraints = [
            choices_constraint("mode", TradingMode, "lane_mode_valid"),
            choices_constraint("broker", BrokerKind, "lane_broker_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.mode}, {self.broker})"


class LaneState(models.Model):
    """Run-time state of a lane that every worker must agree on (the original service kept it in
    memory: docs/compatibility.md#deliberate-differences).

    `lease_owner`/`lease_until` are a lease taken with a compare-and-set UPDATE so that only one
    worker runs a lane's cycle at a time; a killed worker's lease simply expires.
    """

    account_label = models.CharField(max_length=64, unique=True)
    lease_owner = models.CharField(max_length=200, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    last_cycle_started_at = models.DateTimeField(null=True, blank=True)
    last_cycle_finished_at = models.DateTimeField(null=True, blank=True)
    last_cycle_status = models.CharField(max_length=40, blank=True, default="")
    last_cycle_summary = models.JSONField(default=dict, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_reconcile_at = models.DateTimeField(null=True, blank=True)
    last_signal_ts = models.DateTimeField(null=True, blank=True)
    signal_lag_seconds = models.FloatField(null=True, blank=True)
    no_signal_reason = models.CharField(max_length=64, blank=True, default="")
    no_signal_streak = models.PositiveIntegerField(default=0)
    market_open = models.BooleanField(null=True, blank=True)
    universe_status = models.CharField(max_length=16, blank=True, default="")
    catalog_checked_at = models.DateTimeField(null=True, blank=True)
    # equity watermarks, moved once per cycle from the account snapshot (`lane_equity_track`):
    # the high-water mark only rises (GREATEST in the UPDATE) unless an operator rebases it when
    # clearing an emergency stop; the session fields restart on the first cycle of a US/Eastern day
    last_equity = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    equity_high_water_mark = models.DecimalField(
        max_digits=20, decimal_places=6, null=True, blank=True
    )
    session_day = models.DateField(null=True, blank=True, help_text="US/Eastern calendar date")
    session_start_equity = models.DecimalField(
        max_digits=20, decimal_places=6, null=True, blank=True
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(equity_high_water_mark__isnull=True)
                | Q(last_equity__isnull=True)
                | Q(equity_high_water_mark__gte=F("last_equity")),
                name="lane_hwm_not_below_equity",
            ),
            models.CheckConstraint(
                condition=Q(session_day__isnull=True, session_start_equity__isnull=True)
                | Q(session_day__isnull=False, session_start_equity__isnull=False),
                name="lane_session_day_has_start",
            ),
        ]

    def __str__(self) -> str:
        return f"lane state {self.account_label}"


class LiveApprovalStatus(models.TextChoices):
    REQUESTED = "requested", "requested"
    APPROVED = "approved", "approved"
    REVOKED = "revoked", "revoked"


class LiveApproval(models.Model):
    """Permission to send live orders for one account lane, given by two people.

    One staff user requests it (`requested_by`, with a reason and a TTL); a different user with
    `trading.approve_liveapproval` approves it before the TTL runs out, and the approval then
    lasts the TTL from `approved_at` (`expires_at`). Either kind of operator may revoke it.
    Only `trading.services.live_approvals` writes these rows (compare-and-set on `status`).
    Rows from before the two-person rule were migrated to `revoked` and carry no `ttl`.
    """

    account_label = models.CharField(max_length=64)
    status = models.CharField(
        max_length=16, choices=LiveApprovalStatus.choices, default=LiveApprovalStatus.REQUESTED
    )
    reason = models.TextField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    ttl = models.DurationField(
        null=True,
        blank=True,
        help_text="how long the request waits for approval, and how long the approval lasts",
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )

    class Meta:
        ordering = ["-requested_at", "-pk"]
        permissions = [("approve_liveapproval", "Can approve live trading")]
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="live_approval_reason_required"),
            choices_constraint("status", LiveApprovalStatus, "live_approval_status_valid"),
            models.CheckConstraint(
                condition=~Q(status=LiveApprovalStatus.APPROVED)
                | Q(
                    approved_by__isnull=False,
                    approved_at__isnull=False,
                    expires_at__isnull=False,
                    expires_at__gt=F("approved_at"),
                ),
                name="live_approval_approved_complete",
            ),
            models.CheckConstraint(
                condition=~Q(status=LiveApprovalStatus.APPROVED)
                | ~Q(approved_by=F("requested_by")),
                name="live_approval_two_people",
            ),
            models.CheckConstraint(
                condition=~Q(status=LiveApprovalStatus.REQUESTED)
                | Q(approved_by__isnull=True, approved_at__isnull=True, expires_at__isnull=True),
                name="live_approval_requested_unapproved",
            ),
            models.CheckConstraint(
                condition=Q(status=LiveApprovalStatus.REVOKED, revoked_at__isnull=False)
                | (
                    ~Q(status=LiveApprovalStatus.REVOKED)
                    & Q(revoked_at__isnull=True, revoked_by__isnull=True)
                ),
                name="live_approval_revoked_has_time",
            ),
            models.CheckConstraint(
                condition=Q(ttl__isnull=False, ttl__gt=timedelta(0))
                | Q(status=LiveApprovalStatus.REVOKED),
                name="live_approval_ttl_positive",
            ),
        ]
        indexes = [
            # `live_approval_active`: the approved rows of a lane (the live order firewall)
            models.Index(
                fields=["account_label"],
                condition=Q(status=LiveApprovalStatus.APPROVED),
                name="live_approval_approved_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"live approval {self.pk} {self.account_label} ({self.status})"


class PositionSnapshot(models.Model):
    account_label = models.CharField(max_length=64)
    as_of = models.DateTimeField()
    equity = models.DecimalField(max_digits=20, decimal_places=6)
    cash = models.DecimalField(max_digits=20, decimal_places=6)
    buying_power = models.DecimalField(max_digits=20, decimal_places=6)
    positions = models.JSONField(default=list)

    class Meta:
        get_latest_by = "as_of"
        indexes = [
            models.Index(fields=["account_label", "-as_of"], name="snapshot_lane_latest_idx")
        ]

    def __str__(self) -> str:
        return f"{self.account_label} @ {self.as_of:%Y-%m-%d %H:%M:%S}"


class TradeCursor(models.Model):
    """Where a lane's signal source is up to: (cursor_at, cursor_symbol, cursor_seq)."""

    source = models.CharField(max_length=32)
    account_label = models.CharField(max_length=64)
    cursor_at = models.DateTimeField(null=True, blank=True)
    cursor_symbol = models.CharField(max_length=32, blank=True, default="")
    cursor_seq = models.BigIntegerField(default=0)
    state = models.JSONField(
        default=dict, blank=True, help_text="source-specific state (e.g. replay anchor)"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "account_label"], name="trade_cursor_source_lane_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source}/{self.account_label} @ {self.cursor_at}"
