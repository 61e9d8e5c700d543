"""The LiveApproval admin (registered in `trading.admin`): two-person live approvals.

"Add" records a request by the signed-in user (lane, reason, TTL; nothing else is editable);
the changelist's actions approve (a different user) or revoke the selected rows with the
reason typed beside the action. Each calls `trading.services.live_approvals`, whose refusals
become error messages; rows are never edited or deleted here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from trading.lanes import live_lane_labels
from trading.models import LiveApproval
from trading.services.live_approvals import (
    APPROVE_PERMISSION,
    READ_PERMISSIONS,
    REVOKE_PERMISSIONS,
    TTL_HOURS_LIMIT,
    LiveApprovalError,
    live_approval_approve,
    live_approval_request,
    live_approval_revoke,
)


class LiveApprovalActionForm(helpers.ActionForm):
    """The changelist's action bar, with the reason every approval and revocation needs."""

    reason = forms.CharField(required=False, max_length=2000, label="Reason")


class LiveApprovalRequestForm(forms.Form):
    account_label = forms.ChoiceField(label="Live lane", choices=())
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)
    ttl_hours = forms.IntegerField(
        label="TTL (hours)",
        min_value=1,
        max_value=TTL_HOURS_LIMIT,
        help_text="how long the request waits for a second person's approval, then how long "
        "the approval lasts (at most TRADING_LIVE_APPROVAL_MAX_TTL_HOURS)",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["account_label"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(label, label) for label in live_lane_labels()]


class LiveApprovalAdmin(admin.ModelAdmin[LiveApproval]):
    """Two-person live approvals: "Add" records a request by the signed-in user; the actions
    approve (another user) or revoke. Rows are never edited or deleted here."""

    list_display = (
        "id",
        "status",
        "account_label",
        "requested_by",
        "requested_at",
        "approved_by",
        "expires_at",
        "revoked_at",
    )
    list_filter = ("status", "account_label")
    actions = ["approve_requests", "revoke_approvals"]
    action_form = LiveApprovalActionForm

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return any(request.user.has_perm(perm) for perm in READ_PERMISSIONS)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(APPROVE_PERMISSION)

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return any(request.user.has_perm(perm) for perm in REVOKE_PERMISSIONS)

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = LiveApprovalRequestForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                approval = live_approval_request(
                    account_label=form.cleaned_data["account_label"],
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    ttl=timedelta(hours=form.cleaned_data["ttl_hours"]),
                )
            except LiveApprovalError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(
                    request,
                    f"Live approval {approval.pk} requested for {approval.account_label}: "
                    "another person must approve it",
                )
                return HttpResponseRedirect(reverse("admin:trading_liveapproval_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Request live trading",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/trading/live_approval_request.html", context)

    def _act(
        self,
        request: HttpRequest,
        queryset: QuerySet[LiveApproval],
        service: Callable[..., LiveApproval],
        done: str,
    ) -> None:
        reason = str(request.POST.get("reason", ""))
        for approval_id in queryset.order_by("pk").values_list("pk", flat=True):
            try:
                service(approval_id=approval_id, actor=request.user, reason=reason)
            except LiveApprovalError as exc:
                messages.error(request, f"live approval {approval_id}: {exc.message}")
            else:
                messages.success(request, f"live approval {approval_id} {done}")

    @admin.action(description="Approve selected requests", permissions=["approve"])
    def approve_requests(self, request: HttpRequest, queryset: QuerySet[LiveApproval]) -> None:
        self._act(request, queryset, live_approval_approve, "approved")

    @admin.action(description="Revoke selected approvals", permissions=["revoke"])
    def revoke_approvals(self, request: HttpRequest, queryset: QuerySet[LiveApproval]) -> None:
        self._act(request, queryset, live_approval_revoke, "revoked")
