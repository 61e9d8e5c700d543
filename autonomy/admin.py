"""The research ledger in the admin (read-only: the lane and the promotion services write it)."""

from __future__ import annotations

from django.contrib import admin

from autonomy.models import (
    CandidateStage,
    FoldMetric,
    Promotion,
    ResearchCandidate,
    ResearchRun,
    StressMetric,
)
from torghut_site.admin_base import ReadOnlyAdmin


class _Inline(admin.TabularInline):  # type: ignore[type-arg]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


class FoldInline(_Inline):
    model = FoldMetric
    fields = ("fold_order", "fold_name", "trade_count", "net_pnl", "max_drawdown", "cost_bps")
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
        "approver",
        "reason",
    )
    readonly_fields = fields


@admin.register(ResearchRun)
class ResearchRunAdmin(ReadOnlyAdmin):
    list_display = (
        "run_id",
        "status",
        "trigger",
        "strategy_name",
        "recommended_mode",
        "started_at",
    )
    list_filter = ("status", "trigger", "recommended_mode")
    search_fields = ("run_id", "strategy_name")


@admin.register(ResearchCandidate)
class ResearchCandidateAdmin(ReadOnlyAdmin):
    list_display = (
        "candidate_id",
        "strategy_name",
        "lifecycle_role",
        "lifecycle_status",
        "promotion_target",
        "trade_count",
        "created_at",
    )
    list_filter = ("lifecycle_role", "lifecycle_status", "promotion_target")
    search_fields = ("candidate_id", "strategy_name", "run__run_id")
    inlines = [FoldInline, StressInline, PromotionInline]


@admin.register(Promotion)
class PromotionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "candidate", "decision_action", "approved_mode", "approver")
    list_filter = ("decision_action", "approved_mode")


@admin.register(CandidateStage)
class CandidateStageAdmin(ReadOnlyAdmin):
    list_display = ("candidate_id", "active_stage", "paused", "run_id", "updated_at")
    list_filter = ("active_stage", "paused")
