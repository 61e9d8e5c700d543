from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from torghut_site.db import choices_constraint


class SafetyState(models.Model):
    """Persisted safety latches. `scope` is "global" (one row); kept in the database so a restart,
    a second worker or a deploy never forgets an engaged kill switch or a latched emergency stop.
    """

    scope = models.CharField(max_length=32, unique=True, default="global")
    kill_switch_engaged = models.BooleanField(default=False)
    kill_switch_reason = models.TextField(blank=True, default="")
    kill_switch_changed_at = models.DateTimeField(null=True, blank=True)
    # the value of TRADING_KILL_SWITCH_ENABLED (env/Flipt) last audited by
    # `trading.services.safety.kill_switch_flag_observe`: a flip is a change from this
    kill_switch_flag_seen = models.BooleanField(default=False)
    emergency_stop_active = models.BooleanField(default=False)
    emergency_stop_reasons = models.JSONField(default=list, blank=True)
    emergency_stop_triggered_at = models.DateTimeField(null=True, blank=True)
    emergency_stop_clean_cycles = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(emergency_stop_active=False)
                | Q(emergency_stop_triggered_at__isnull=False),
                name="safety_latched_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"safety {self.scope}"


class SafetyEventKind(models.TextChoices):
    KILL_SWITCH_ON = "kill_switch_on", "kill switch engaged"
    KILL_SWITCH_OFF = "kill_switch_off", "kill switch released"
    KILL_SWITCH_FLAG_ON = "kill_switch_flag_on", "kill switch engaged by its flag"
    KILL_SWITCH_FLAG_OFF = "kill_switch_flag_off", "kill switch released by its flag"
    KILL_SWITCH_CANCEL = "kill_switch_cancel", "open orders cancelled by kill switch"
    EMERGENCY_STOP_TRIGGERED = "emergency_stop_triggered", "emergency stop triggered"
    EMERGENCY_STOP_RECOVERED = "emergency_stop_recovered", "emergency stop auto-recovered"
    EMERGENCY_STOP_CLEARED = "emergency_stop_cleared", "emergency stop cleared by hand"
    LIVE_APPROVAL_REQUESTED = "live_approval_requested", "live approval requested"
    LIVE_APPROVAL_GRANTED = "live_approval_granted", "live approval granted"
    LIVE_APPROVAL_REVOKED = "live_approval_revoked", "live approval revoked"
    STRATEGY_CREATED = "strategy_created", "strategy added in the admin"
    STRATEGY_CHANGED = "strategy_changed", "strategy changed in the admin"
    STRATEGY_DELETED = "strategy_deleted", "strategy deleted in the admin"


class SafetyEvent(models.Model):
    """Append-only audit trail of every safety control change."""

    kind = models.CharField(max_length=40, choices=SafetyEventKind.choices)
    account_label = models.CharField(max_length=64, blank=True, default="")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(
        max_length=120, help_text="user name, 'system' or the flag source"
    )
    reason = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-pk"]
        constraints = [choices_constraint("kind", SafetyEventKind, "safety_event_kind_valid")]

    def __str__(self) -> str:
        return f"{self.kind} by {self.actor_label}"


class Incident(models.Model):
    """An incident for the operator: an emergency stop (also written as JSON to artifact
    storage), an unknown order, or a lane's books that disagree with the broker on a symbol."""

    incident_key = models.CharField(max_length=80, unique=True)
    kind = models.CharField(max_length=40, default="emergency_stop")
    reasons = models.JSONField(default=list)
    snapshot = models.JSONField(default=dict)
    artifact_path = models.CharField(max_length=300, blank=True, default="")
    # set by the per-lane, per-symbol kinds (book_mismatch)
    account_label = models.CharField(max_length=64, blank=True, default="")
    symbol = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # `books_reconcile`: one open book_mismatch incident per lane and symbol
            models.UniqueConstraint(
                fields=["account_label", "symbol"],
                condition=Q(kind="book_mismatch", resolved_at__isnull=True),
                name="incident_book_mismatch_one_open",
            )
        ]

    def __str__(self) -> str:
        return self.incident_key
