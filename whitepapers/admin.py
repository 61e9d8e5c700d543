"""Review whitepaper runs: one page per run with its paper, steps, AgentRuns, synthesis, verdict,
pull requests and artifacts; actions to requeue and re-dispatch (the only writes, through the
same services as the API)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from torghut_site.admin_base import ReadOnlyAdmin
from whitepapers.models import (
    GithubIssueEvent,
    ParseStatus,
    WhitepaperAnalysisRun,
    WhitepaperAnalysisStep,
    WhitepaperArtifact,
    WhitepaperCodexAgentRun,
    WhitepaperDesignPullRequest,
    WhitepaperDocument,
    WhitepaperDocumentVersion,
)
from whitepapers.services.intake import admin_requeue
from whitepapers.storage import ObjectStoreError, object_url


class _ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class StepInline(_ReadOnlyInline):
    model = WhitepaperAnalysisStep
    fields = ("step_order", "step_name", "attempt", "status", "executor", "duration_ms")
    readonly_fields = fields


class AgentRunInline(_ReadOnlyInline):
    model = WhitepaperCodexAgentRun
    fields = ("attempt", "agentrun_name", "status", "uid", "vcs_head_branch", "started_at")
    readonly_fields = fields


class PullRequestInline(_ReadOnlyInline):
    model = WhitepaperDesignPullRequest
    fields = ("attempt", "pr_link", "status", "ci_status", "is_merged", "head_branch")
    readonly_fields = fields

    def pr_link(self, obj: WhitepaperDesignPullRequest) -> SafeString | str:
        if not obj.pr_url:
            return "—"
        return format_html('<a href="{}">#{}</a>', obj.pr_url, obj.pr_number or "PR")


class ArtifactInline(_ReadOnlyInline):
    model = WhitepaperArtifact
    fk_name = "run"
    fields = ("artifact_type", "artifact_role", "artifact_uri", "size_bytes", "content_type")
    readonly_fields = fields


def _pdf_link(version: WhitepaperDocumentVersion | None) -> SafeString | str:
    if version is None or version.parse_status != ParseStatus.STORED:
        return "not stored" if version is None else f"not stored: {version.parse_error}"
    try:
        url = object_url(version.ceph_object_key)
    except ObjectStoreError as exc:
        return f"{version.ceph_bucket}/{version.ceph_object_key} (no link: {exc})"
    return format_html(
        '<a href="{}">{} ({} bytes, sha256 {}…)</a>',
        url,
        version.ceph_object_key,
        version.file_size_bytes,
        version.checksum_sha256[:12],
    )


def _fields_table(pairs: list[tuple[str, Any]]) -> SafeString:
    rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", pairs)
    return format_html("<table>{}</table>", rows)


class RepositoryFilter(admin.SimpleListFilter):
    title = "repository"
    parameter_name = "repository"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        identifiers = WhitepaperDocument.objects.values_list("source_identifier", flat=True)
        repositories = sorted({i.split("#", 1)[0] for i in identifiers.distinct()[:1000]})
        return [(r, r) for r in repositories]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[WhitepaperAnalysisRun]
    ) -> QuerySet[WhitepaperAnalysisRun]:
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(document__source_identifier__startswith=f"{value}#")


@admin.register(WhitepaperAnalysisRun)
class AnalysisRunAdmin(ReadOnlyAdmin):
    list_display = (
        "run_id",
        "status",
        "repository_issue",
        "dispatch_attempt",
        "trigger_source",
        "failure_code",
        "created_at",
        "completed_at",
    )
    list_filter = ("status", "trigger_source", RepositoryFilter)
    search_fields = ("run_id", "document__source_identifier", "document__document_key")
    list_select_related = ("document",)
    date_hierarchy = "created_at"
    inlines = [StepInline, AgentRunInline, PullRequestInline, ArtifactInline]
    actions = ["requeue_runs", "redispatch_runs"]
    readonly_fields = (
        "document_link",
        "paper",
        "synthesis_view",
        "verdict_view",
        "orchestration_context",
        "failure_reason",
    )
    fields = (
        "run_id",
        "status",
        "document_link",
        "paper",
        "dispatch_attempt",
        "trigger_source",
        "trigger_actor",
        "failure_code",
        "failure_reason",
        "synthesis_view",
        "verdict_view",
        "orchestration_context",
        "created_at",
        "started_at",
        "completed_at",
    )

    def has_dispatch_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("whitepapers.change_whitepaperanalysisrun")

    @admin.display(description="issue")
    def repository_issue(self, obj: WhitepaperAnalysisRun) -> str:
        return obj.document.source_identifier

    @admin.display(description="document")
    def document_link(self, obj: WhitepaperAnalysisRun) -> SafeString:
        url = reverse("admin:whitepapers_whitepaperdocument_change", args=[obj.document_id])
        return format_html('<a href="{}">{}</a>', url, obj.document)

    @admin.display(description="paper (presigned link)")
    def paper(self, obj: WhitepaperAnalysisRun) -> SafeString | str:
        return _pdf_link(obj.document_version)

    @admin.display(description="synthesis")
    def synthesis_view(self, obj: WhitepaperAnalysisRun) -> SafeString | str:
        synthesis = getattr(obj, "synthesis", None)
        if synthesis is None:
            return "—"
        return _fields_table(
            [
                ("executive summary", synthesis.executive_summary),
                ("problem", synthesis.problem_statement),
                ("method", synthesis.methodology_summary),
                ("key findings", "; ".join(map(str, synthesis.key_findings))),
                ("implementation plan", synthesis.implementation_plan_md),
                ("confidence", synthesis.confidence),
                ("model", synthesis.model_name),
            ]
        )

    @admin.display(description="verdict")
    def verdict_view(self, obj: WhitepaperAnalysisRun) -> SafeString | str:
        verdict = getattr(obj, "verdict", None)
        if verdict is None:
            return "—"
        return _fields_table(
            [
                ("verdict", verdict.verdict),
                ("score", verdict.score),
                ("confidence", verdict.confidence),
                ("rationale", verdict.rationale),
                ("rejection reasons", "; ".join(map(str, verdict.rejection_reasons))),
                ("requires follow-up", verdict.requires_followup),
                ("approved by", verdict.approved_by or "—"),
            ]
        )

    @admin.action(description="Requeue analysis (next AgentRun attempt)", permissions=["dispatch"])
    def requeue_runs(self, request: HttpRequest, queryset: QuerySet[WhitepaperAnalysisRun]) -> None:
        for run in queryset.select_related("document", "document_version"):
            outcome = admin_requeue(run, actor=request.user.get_username())
            level = messages.SUCCESS if outcome.reason == "requeued" else messages.WARNING
            detail = f" ({outcome.detail})" if outcome.detail else ""
            # the admin's audit trail (the run's History): who asked, and what came of it
            self.log_change(request, run, f"Requeue analysis: {outcome.reason}{detail}")
            self.message_user(request, f"{run.run_id}: {outcome.reason}{detail}", level)

    @admin.action(description="Re-dispatch AgentRun (queued task)", permissions=["dispatch"])
    def redispatch_runs(
        self, request: HttpRequest, queryset: QuerySet[WhitepaperAnalysisRun]
    ) -> None:
        from whitepapers.tasks import dispatch_agentrun

        runs = list(queryset)
        for run in runs:
            # the task dispatches as "torghut": the History names the operator who asked
            self.log_change(request, run, "Re-dispatch AgentRun: dispatch queued")
            dispatch_agentrun.delay(run.run_id)
        self.message_user(request, f"dispatch queued for {len(runs)} run(s)")


class VersionInline(_ReadOnlyInline):
    model = WhitepaperDocumentVersion
    fields = (
        "version_number",
        "parse_status",
        "file_size_bytes",
        "checksum_sha256",
        "ceph_object_key",
        "page_count",
        "char_count",
        "pdf",
    )
    readonly_fields = fields

    def pdf(self, obj: WhitepaperDocumentVersion) -> SafeString | str:
        return _pdf_link(obj)


@admin.register(WhitepaperDocument)
class DocumentAdmin(ReadOnlyAdmin):
    list_display = ("document_key", "source_identifier", "title", "status", "created_at")
    list_filter = ("status", "source")
    search_fields = ("document_key", "source_identifier", "title")
    inlines = [VersionInline]


@admin.register(GithubIssueEvent)
class GithubIssueEventAdmin(ReadOnlyAdmin):
    """Every GitHub issue event received, and what processing made of it."""

    list_display = (
        "received_at",
        "source",
        "event_name",
        "action",
        "repository",
        "issue_number",
        "status",
        "reason",
        "run",
    )
    list_filter = ("source", "status", "reason", "event_name")
    search_fields = ("delivery_id", "repository", "run__run_id")
    list_select_related = ("run",)
    date_hierarchy = "received_at"
