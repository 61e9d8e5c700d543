"""Operator notifications: one row per event, posted to the configured webhooks by a task."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from torghut_site.db import choices_constraint


class NotificationStatus(models.TextChoices):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Notification(models.Model):
    """An event for the operators' webhooks. `event_id` is deterministic (kind + object id +
    state), so the same event raised twice is one row and one post."""

    event_id = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=40)
    payload = models.JSONField(default=dict)
    status = models.CharField(
        max_length=16, choices=NotificationStatus.choices, default=NotificationStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    # when the next attempt is due: a pending row's retry within its round (a sweep queues it
    # again once overdue: its retry message was lost), a failed row's next round (the sweep puts
    # it back to pending); None: sent, never attempted, or failed for good (an admin resend)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "notifications"
        ordering = ["-created_at"]
        constraints = [
            choices_constraint("status", NotificationStatus, "notification_status_valid"),
            models.CheckConstraint(
                condition=Q(status="sent", sent_at__isnull=False) | ~Q(status="sent"),
                name="notification_sent_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(next_attempt_at__isnull=True),
                name="notification_sent_not_due",
            ),
        ]
        indexes = [
            # `notifications_requeue_lost`: overdue retries (pending, attempts > 0) and due rounds
            # (failed) by next_attempt_at; sent rows (the bulk of the table) never have one
            models.Index(
                fields=["status", "next_attempt_at"],
                condition=Q(next_attempt_at__isnull=False),
                name="notification_due_idx",
            ),
            # `notifications_requeue_lost`: pending rows never attempted, by age
            models.Index(
                fields=["created_at"],
                condition=Q(status="pending", attempts=0),
                name="notification_unsent_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.event_id
