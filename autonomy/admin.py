"""The research ledger in the admin, the operators' review and approval screen.

- A run's page shows its status and progress, the recommendation, the gate table (gates 0-7 with
  every check's value and threshold), the readiness dry runs, the artifacts (with a link each),
  and for its candidate the folds, stress cases and equity curve (inline SVG drawn here, no JS).
- A candidate's page shows its lifecycle, orchestration stage and promotion history, and offers
  the promotion actions. Each action asks for a reason on a confirmation page and acts on POST
  only, through the promotion service (which checks the permissions again and refuses with a
  `PromotionError`, shown as an error message with nothing written). Every accepted action is
  also written to Django's admin log.
- Promotions are an append-only audit table: read-only here.

The ledger itself is written by the lane and the promotion services only: nothing is editable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

# the research tools' pages (replay checks, sweeps, trials): registered by importing them
from autonomy import admin_research  # noqa: F401
from autonomy.models import (
    ArtifactConflict,
    CandidateStage,
    DriftCheck,
    EvidenceContinuityReport,
    FoldMetric,
    LifecycleRole,
    Promotion,
    PromotionMode,
    ResearchCandidate,
    ResearchRun,
    RunStatus,
    StressMetric,
)
from autonomy.selectors import (
    artifact_links,
    candidate_stage,
    gate_rows,
    readiness_rows,
)
from autonomy.services.promotion import (
    promotion_approve,
    promotion_demote,
    promotion_deny,
    promotion_rollback,
)
from autonomy.services.strategies import PromotionError
from torghut_site.admin_base import ReadOnlyAdmin
from torghut_site.charts import BarSeries, bar_chart_svg, equity_curve_svg
from trading.lanes import lane_configs

APPROVE = "autonomy.approve_promotion"
APPROVE_LIVE = "autonomy.approve_live_promotion"


class _Inline(admin.TabularInline):  # type: ignore[type-arg]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class FoldInline(_Inline):
    model = FoldMetric
    fields = (
        "fold_order",
        "fold_name",
        "test_start",
        "test_end",
        "trade_count",
        "gross_pnl",
        "net_pnl",
        "max_drawdown",
        "turnover_ratio",
        "cost_bps",
    )
    readonly_fields = fields


class StressInline(_Inline):
    model = StressMetric
    fields = ("stress_case", "pessimistic_pnl_delta", "metric_bundle")
    readonly_fields = fields


class PromotionInline(_Inline):
    model = Promotion
    fields = (
        "created_at",
        "decision_action",
        "requested_mode",
        "approved_mode",
        "account_label",
        "approver",
        "approver_role",
        "reason",
    )
    readonly_fields = fields
    ordering = ("-created_at", "-pk")


# ------------------------------------------------------------------ runs


def _progress(run: ResearchRun) -> SafeString:
    if run.progress_total <= 0:
        return format_html("{}", "—")
    return format_html(
        '<progress value="{}" max="{}"></progress> {}/{} {}',
        run.progress_done,
        run.progress_total,
        run.progress_done,
        run.progress_total,
        run.progress_label,
    )


@dataclass(frozen=True)
class CandidateEvidence:
    candidate: ResearchCandidate
    url: str
    stage: CandidateStage | None
    folds: list[FoldMetric]
    stress: list[StressMetric]
    chart: SafeString

    @property
    def fold_chart(self) -> SafeString:
        """Gross and net PnL per walk-forward fold, as grouped bars."""
        return bar_chart_svg(
            [f.fold_name for f in self.folds],
            [
                BarSeries("gross pnl", [f.gross_pnl for f in self.folds]),
                BarSeries("net pnl", [f.net_pnl for f in self.folds]),
            ],
            label="PnL per fold",
            value_format=",.2f",
            empty_text="No fold recorded.",
        )


@admin.register(ResearchRun)
class ResearchRunAdmin(ReadOnlyAdmin):
    change_form_template = "admin/autonomy/researchrun/change_form.html"
    list_display = (
        "run_id",
        "status",
        "trigger",
        "strategy_name",
        "recommended_mode",
        "progress_view",
        "started_at",
    )
    list_filter = ("status", "trigger", "recommended_mode")
    search_fields = ("run_id", "strategy_name")
    date_hierarchy = "started_at"
    fields = (
        "run_id",
        "status",
        "progress_view",
        "trigger",
        "promotion_target",
        "recommended_mode",
        "strategy_name",
        "strategy_type",
        "strategy_version",
        "gate_policy_version",
        "gate_report_trace_id",
        "recommendation_trace_id",
        "code_commit",
        "inputs",
        "manifest_sha256",
        "spec_hash",
        "signal_source",
        "dataset_from",
        "dataset_to",
        "output_dir",
        "error",
        "started_at",
        "finished_at",
    )
    readonly_fields = ("progress_view",)

    @admin.display(description="progress")
    def progress_view(self, obj: ResearchRun) -> SafeString:
        return _progress(obj)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: ResearchRun | None = None,
    ) -> HttpResponse:
        if obj is not None:
            context.update(self.review_context(obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def review_context(self, run: ResearchRun) -> dict[str, Any]:
        report = run.gate_report or {}
        candidates = [
            CandidateEvidence(
                candidate=c,
                url=reverse("admin:autonomy_researchcandidate_change", args=[c.pk]),
                stage=candidate_stage(candidate_id=c.candidate_id),
                folds=list(c.fold_metrics.order_by("fold_order")),
                stress=list(c.stress_metrics.order_by("stress_case")),
                chart=equity_curve_svg(c.equity_curve),
            )
            for c in run.candidates.order_by("pk")
        ]
        return {
            "run": run,
            "running": run.status == RunStatus.RUNNING,
            "recommendation": run.recommendation or {},
            "gate_summary": {
                "allowed": report.get("allowed"),
                "reasons": report.get("reasons") or [],
                "policy_version": report.get("policy_version", run.gate_policy_version),
                "uncertainty_action": report.get("uncertainty_action"),
            },
            "gates": gate_rows(report),
            "readiness": readiness_rows(run.readiness or {}),
            "readiness_errors": sorted((run.readiness or {}).get("errors", {}).items()),
            "artifacts": artifact_links(run),
            "candidate_evidence": candidates,
        }


# ------------------------------------------------------------------ candidates


@dataclass(frozen=True)
class CandidateAction:
    key: str
    label: str
    permissions: tuple[str, ...]
    mode: str = ""  # the promotion's mode (approve actions)
    champion_only: bool = False


CANDIDATE_ACTIONS = {
    a.key: a
    for a in (
        CandidateAction("approve-paper", "Approve promotion to paper", (APPROVE,), mode="paper"),
        CandidateAction(
            "approve-live", "Approve promotion to live", (APPROVE, APPROVE_LIVE), mode="live"
        ),
        CandidateAction("deny", "Deny", (APPROVE,)),
        CandidateAction("demote", "Demote", (APPROVE,), champion_only=True),
        CandidateAction("rollback", "Roll back", (APPROVE,), champion_only=True),
    )
}


class CandidateActionForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)

    def __init__(self, *args: Any, action: CandidateAction, default_mode: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if action.key == "deny":
            self.fields["mode"] = forms.ChoiceField(
                choices=PromotionMode.choices, initial=default_mode or PromotionMode.PAPER
            )
        if action.mode:
            lanes = [lane for lane in lane_configs() if lane.enabled and lane.mode == action.mode]
            self.fields["account_label"] = forms.ChoiceField(
                choices=[("", f"first enabled {action.mode} lane")]
                + [(lane.label, f"{lane.label} ({lane.broker})") for lane in lanes],
                required=False,
                label="Account lane",
            )


@admin.register(ResearchCandidate)
class ResearchCandidateAdmin(ReadOnlyAdmin):
    change_form_template = "admin/autonomy/researchcandidate/change_form.html"
    list_display = (
        "candidate_id",
        "strategy_name",
        "lifecycle_role",
        "lifecycle_status",
        "stage_view",
        "promotion_target",
        "trade_count",
        "created_at",
    )
    list_filter = ("lifecycle_role", "lifecycle_status", "promotion_target")
    search_fields = ("candidate_id", "strategy_name", "run__run_id")
    list_select_related = ("run",)
    inlines = [FoldInline, StressInline, PromotionInline]
    fields = (
        "candidate_id",
        "run_link",
        "strategy_name",
        "strategy_type",
        "strategy_version",
        "lifecycle_role",
        "lifecycle_status",
        "stage_view",
        "promotion_target",
        "decision_count",
        "trade_count",
        "symbols_covered",
        "parameter_set",
        "equity_chart",
        "created_at",
        "updated_at",
    )
    readonly_fields = ("run_link", "stage_view", "equity_chart")

    @admin.display(description="run")
    def run_link(self, obj: ResearchCandidate) -> SafeString:
        url = reverse("admin:autonomy_researchrun_change", args=[obj.run_id])
        return format_html('<a href="{}">{}</a>', url, obj.run.run_id)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ResearchCandidate]:
        # the orchestration stage is keyed by candidate id, not a foreign key: one subquery per
        # column instead of one query per listed candidate
        stages = CandidateStage.objects.filter(candidate_id=OuterRef("candidate_id"))
        rows: QuerySet[ResearchCandidate] = super().get_queryset(request)
        return rows.annotate(
            stage_name=Subquery(stages.values("active_stage")[:1]),
            stage_paused=Subquery(stages.values("paused")[:1]),
        )

    @admin.display(description="stage", ordering="stage_name")
    def stage_view(self, obj: ResearchCandidate) -> str:
        name = getattr(obj, "stage_name", None)
        if not name:
            return "—"
        return f"{name}{' (paused)' if getattr(obj, 'stage_paused', False) else ''}"

    @admin.display(description="equity curve")
    def equity_chart(self, obj: ResearchCandidate) -> SafeString:
        return equity_curve_svg(obj.equity_curve)

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "<path:object_id>/actions/<slug:action>/",
                self.admin_site.admin_view(self.action_view),
                name="autonomy_researchcandidate_action",
            )
        ]
        return custom + super().get_urls()

    def allowed_actions(
        self, request: HttpRequest, candidate: ResearchCandidate
    ) -> list[CandidateAction]:
        """The buttons to show (the service decides on POST whatever is shown)."""
        champion = candidate.lifecycle_role == LifecycleRole.CHAMPION
        return [
            a
            for a in CANDIDATE_ACTIONS.values()
            if request.user.has_perms(a.permissions) and (champion or not a.champion_only)
        ]

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: ResearchCandidate | None = None,
    ) -> HttpResponse:
        if obj is not None:
            context["candidate_actions"] = [
                (
                    a.label,
                    reverse("admin:autonomy_researchcandidate_action", args=[obj.pk, a.key]),
                )
                for a in self.allowed_actions(request, obj)
            ]
        return super().render_change_form(request, context, add, change, form_url, obj)

    def action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        """GET: the confirmation form; POST: the action, through the promotion service."""
        spec = CANDIDATE_ACTIONS.get(action)
        candidate = self.get_object(request, unquote(object_id))
        if spec is None or candidate is None:
            raise Http404("no such candidate or action")
        if not self.has_view_permission(request, candidate):
            raise PermissionDenied
        form = CandidateActionForm(
            request.POST if request.method == "POST" else None,
            action=spec,
            default_mode=candidate.run.recommended_mode,
        )
        if request.method == "POST" and form.is_valid():
            try:
                done = self.perform(request, spec, candidate, form.cleaned_data)
            except PromotionError as exc:
                messages.error(request, f"{spec.label} refused ({exc.code}): {exc.message}")
            else:
                self.log_change(request, candidate, done)
                messages.success(request, done)
                return HttpResponseRedirect(
                    reverse("admin:autonomy_researchcandidate_change", args=[candidate.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": f"{spec.label}: {candidate.candidate_id}",
            "action": spec,
            "form": form,
            "candidate": candidate,
            "original": candidate,
            "stage": candidate_stage(candidate_id=candidate.candidate_id),
            "recommendation": candidate.run.recommendation or {},
            "allowed": request.user.has_perms(spec.permissions),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/autonomy/researchcandidate/action.html", context)

    def perform(
        self,
        request: HttpRequest,
        spec: CandidateAction,
        candidate: ResearchCandidate,
        data: dict[str, Any],
    ) -> str:
        """Call the action's service; the admin-log/message text of what was done."""
        reason, who = data["reason"], request.user
        cid = candidate.candidate_id
        if spec.mode:
            result = promotion_approve(
                candidate=candidate,
                mode=spec.mode,
                actor=who,
                reason=reason,
                account_label=data.get("account_label") or None,
            )
            lane = result.promotion.account_label
            if not result.created:
                return f"{cid} was already promoted to {spec.mode} on lane {lane}: nothing changed"
            return f"Promoted {cid} to {spec.mode} on lane {lane}: {reason}"
        if spec.key == "deny":
            mode = data["mode"]
            promotion_deny(candidate=candidate, mode=mode, actor=who, reason=reason)
            return f"Denied the promotion of {cid} to {mode}: {reason}"
        if spec.key == "demote":
            promotion_demote(candidate=candidate, actor=who, reason=reason)
            return f"Demoted {cid}: {reason}"
        promotion = promotion_rollback(candidate=candidate, actor=who, reason=reason)
        restored = promotion.rollback_candidate_id
        tail = f"; {restored} is champion again" if restored else ""
        return f"Rolled back {cid}{tail}: {reason}"


@admin.register(Promotion)
class PromotionAdmin(ReadOnlyAdmin):
    """The append-only promotion audit (database triggers refuse UPDATE and DELETE)."""

    list_display = (
        "created_at",
        "candidate",
        "decision_action",
        "requested_mode",
        "approved_mode",
        "account_label",
        "approver",
        "reason",
    )
    list_filter = ("decision_action", "requested_mode", "approved_mode")
    search_fields = ("candidate__candidate_id", "approver", "reason")
    list_select_related = ("candidate",)
    date_hierarchy = "created_at"


@admin.register(CandidateStage)
class CandidateStageAdmin(ReadOnlyAdmin):
    list_display = ("candidate_id", "active_stage", "paused", "run_id", "updated_at")
    list_filter = ("active_stage", "paused")
    search_fields = ("candidate_id", "run_id")


@admin.register(DriftCheck)
class DriftCheckAdmin(ReadOnlyAdmin):
    list_display = (
        "checked_at",
        "run",
        "strategy_name",
        "trigger",
        "reason_codes",
        "action",
        "action_status",
        "rollback_triggered",
    )
    list_filter = ("action", "action_status", "rollback_triggered", "trigger")
    search_fields = ("run__run_id", "strategy_name")
    list_select_related = ("run",)


@admin.register(ArtifactConflict)
class ArtifactConflictAdmin(ReadOnlyAdmin):
    """Refused writes and replays of write-once research artifacts (nothing was overwritten)."""

    list_display = ("detected_at", "run_id", "path", "reason", "location")
    list_filter = ("reason",)
    search_fields = ("run_id", "path")


@admin.register(EvidenceContinuityReport)
class EvidenceContinuityReportAdmin(ReadOnlyAdmin):
    list_display = ("checked_at", "passed", "runs_checked", "run_limit", "failed_runs")
    list_filter = ("passed",)
