"""Admin page of the operator notifications (`trading.notifications`): read-only rows, filtered
by status and kind, with one action: resend failed rows (and pending rows whose send was lost)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from torghut_site.admin_base import ReadOnlyAdmin
from trading.models import Notification
from trading.notifications import notifications_resend

RESEND_PERMISSION = "trading.change_notification"


class NotificationAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "kind",
        "event_id",
        "status",
        "attempts",
        "last_error",
        "sent_at",
    )
    list_filter = ("status", "kind")
    search_fields = ("event_id",)
    date_hierarchy = "created_at"
    actions = ("resend_failed",)

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(RESEND_PERMISSION)

    @admin.action(
        description="Resend failed (or lost) notifications (back to pending, attempts reset)",
        permissions=["resend"],
    )
    def resend_failed(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        chosen = list(queryset.order_by("pk").values_list("pk", flat=True))
        resent = set(notifications_resend(notification_ids=chosen))
        for row in Notification.objects.filter(pk__in=resent).order_by("pk"):
            # the admin's audit trail (the row's History): who sent it again
            self.log_change(request, row, "Resend: back to pending, send queued")
        skipped = len(chosen) - len(resent)
        level = messages.WARNING if skipped else messages.SUCCESS
        text = f"{len(resent)} queued again; {skipped} left alone (sent, or pending in retries)"
        self.message_user(request, text, level)
