"""The operators' admin: API tokens, process heartbeats (with the dashboard and provenance
pages) and dead letters. The models stay in `torghut_site` (app label `ops`), which writes and
reads them."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils import timezone

from ops import admin_provenance
from ops.admin_dashboard import dashboard_view
from torghut_site.admin_base import ReadOnlyAdmin
from torghut_site.models import ApiToken, DeadLetterMessage, ProcessHeartbeat
from torghut_site.selectors import heartbeat_state


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    list_display = (
        "name",
        "user",
        "prefix",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    list_filter = ("revoked_at", "expires_at")
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = (
        "user",
        "name",
        "prefix",
        "digest",
        "created_at",
        "last_used_at",
        "expires_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        # keys are shown exactly once, by `manage.py create_api_token`
        return False


@admin.register(ProcessHeartbeat)
class ProcessHeartbeatAdmin(ReadOnlyAdmin):
    """Also serves the operators' dashboard page (`admin:ops_dashboard`), linked from the
    index, and the provenance pages (`ops.admin_provenance`)."""

    list_display = (
        "kind",
        "name",
        "state",
        "hostname",
        "pid",
        "started_at",
        "last_seen_at",
        "expires_at",
    )
    list_filter = ("kind",)
    search_fields = ("name", "hostname")

    @admin.display(description="state")
    def state(self, obj: ProcessHeartbeat) -> str:
        """As every reader shows it: `dead` once past `expires_at`."""
        return heartbeat_state(
            state=str(obj.details.get("state", "")), expires_at=obj.expires_at, now=timezone.now()
        )

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        pages = [
            path("dashboard/", view(self.dashboard_view), name="ops_dashboard"),
            path(
                "provenance/decision/<int:decision_id>/",
                view(self.decision_provenance_view),
                name="ops_provenance_decision",
            ),
            path(
                "provenance/whitepaper/<str:run_id>/",
                view(self.whitepaper_provenance_view),
                name="ops_provenance_whitepaper",
            ),
            path(
                "provenance/whitepaper/<str:run_id>/link/",
                view(self.link_candidates_view),
                name="ops_provenance_link",
            ),
        ]
        return [*pages, *super().get_urls()]

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        return dashboard_view(request, self.admin_site)

    def decision_provenance_view(self, request: HttpRequest, decision_id: int) -> HttpResponse:
        return admin_provenance.decision_view(request, self.admin_site, decision_id)

    def whitepaper_provenance_view(self, request: HttpRequest, run_id: str) -> HttpResponse:
        return admin_provenance.whitepaper_view(request, self.admin_site, run_id)

    def link_candidates_view(self, request: HttpRequest, run_id: str) -> HttpResponse:
        return admin_provenance.link_view(request, self.admin_site, run_id)


@admin.register(DeadLetterMessage)
class DeadLetterMessageAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "consumer",
        "topic",
        "partition",
        "offset",
        "reason",
        "published_at",
    )
    list_filter = ("consumer", "reason")
    search_fields = ("topic", "error")
    fields = (
        "consumer",
        "topic",
        "partition",
        "offset",
        "reason",
        "error",
        "value_preview",
        "published_at",
        "created_at",
    )
    readonly_fields = fields
