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
        ]

    def __str__(self) -> str:
        return self.event_id
