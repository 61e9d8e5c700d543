"""Admin pages of the LLM review and DSPy artifacts: read-only, every field shown."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from torghut_site.admin_base import ReadOnlyAdmin
from torghut_site.storage import ObjectStoreError, object_url
from trading.models import (
    LLMCircuitBreaker,
    LLMCommitteeVote,
    LLMDecisionReview,
    LLMDspyWorkflowArtifact,
    LLMSpendDay,
    LLMSpendReservation,
    LLMStabilityProbe,
)
from trading.services.llm_budget import cost_per_1000_reviews


def _pretty(value: Any) -> SafeString:
    if value in (None, "", [], {}):
        return format_html("{}", "—")
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    return format_html('<pre style="white-space: pre-wrap; max-width: 100em">{}</pre>', text)


def review_summary(review: LLMDecisionReview) -> SafeString:
    """The review as a table on the decision page, linked to its full record and the order."""
    url = reverse("admin:trading_llmdecisionreview_change", args=[review.pk])
    order = "—"
    if review.execution_id is not None:
        order = format_html(
            '<a href="{}">execution {}</a>',
            reverse("admin:trading_execution_change", args=[review.execution_id]),
            review.execution_id,
        )
    rows = [
        ("review", format_html('<a href="{}">review {}</a> ({})', url, review.pk, review.status)),
        ("verdict → effect", f"{review.verdict or '—'} → {review.effect or '—'}"),
        ("reasons", ", ".join(review.reasons) or "—"),
        ("shadow", f"yes ({', '.join(review.shadow_reasons)})" if review.shadow else "no"),
        ("quantity", f"{review.deterministic_qty} deterministic → {review.final_qty} reviewed"),
        ("rationale", review.rationale or "—"),
        ("model", f"{review.provider} {review.model} prompt {review.prompt_version}"),
        (
            "program",
            f"{review.program_name} {review.signature_version} {review.artifact_hash[:16]}"
            if review.program_name
            else "—",
        ),
        ("tokens", f"{review.tokens_prompt} prompt + {review.tokens_completion} completion"),
        ("latency", f"{review.latency_ms} ms" if review.latency_ms is not None else "—"),
        ("error", review.error or "—"),
        ("order", order),
    ]
    body = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
    return format_html("<table>{}</table>", body)


class CommitteeVoteInline(admin.TabularInline[LLMCommitteeVote, LLMDecisionReview]):
    """Each committee role's vote (llm_committee_votes), read-only."""

    model = LLMCommitteeVote
    extra = 0
    can_delete = False
    fields = (
        "role",
        "verdict",
        "confidence",
        "uncertainty_band",
        "rationale_short",
        "required_checks",
        "risk_flags",
        "adjusted_qty",
        "adjusted_order_type",
        "limit_price",
        "error",
        "tokens_prompt",
        "tokens_completion",
        "latency_ms",
        "response_sha256",
    )
    readonly_fields = fields

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(LLMDecisionReview)
class LLMDecisionReviewAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "account_label",
        "decision_id",
        "symbol",
        "status",
        "verdict",
        "effect",
        "shadow",
        "runtime",
        "model",
        "deterministic_qty",
        "final_qty",
        "latency_ms",
        "cost_usd",
    )
    list_filter = ("status", "verdict", "effect", "shadow", "runtime", "account_label")
    search_fields = (
        "decision__symbol",
        "decision__client_order_id",
        "model",
        "artifact_hash",
        "response_sha256",
    )
    date_hierarchy = "created_at"
    list_select_related = ("decision",)
    exclude = ("input_json", "prompt_json", "response_json", "config_json", "response_body")
    readonly_fields = ("decision_link", "input", "prompt", "response", "raw_answer", "config")
    inlines = [CommitteeVoteInline]

    @admin.display(description="decision")
    def decision_link(self, obj: LLMDecisionReview) -> SafeString:
        url = reverse("admin:trading_tradedecision_change", args=[obj.decision_id])
        return format_html('<a href="{}">decision {}</a>', url, obj.decision_id)

    @admin.display(description="symbol", ordering="decision__symbol")
    def symbol(self, obj: LLMDecisionReview) -> str:
        return obj.decision.symbol

    @admin.display(description="input snapshot")
    def input(self, obj: LLMDecisionReview) -> SafeString:
        return _pretty(obj.input_json)

    @admin.display(description="prompt (messages sent)")
    def prompt(self, obj: LLMDecisionReview) -> SafeString:
        return _pretty(obj.prompt_json)

    @admin.display(description="response")
    def response(self, obj: LLMDecisionReview) -> SafeString:
        return _pretty(obj.response_json)

    @admin.display(description="raw answer (response_body, before parsing)")
    def raw_answer(self, obj: LLMDecisionReview) -> SafeString:
        if not obj.response_body:
            return format_html("{}", "—")
        return format_html(
            '<pre style="white-space: pre-wrap; max-width: 100em">{}</pre>', obj.response_body
        )

    @admin.display(description="configuration")
    def config(self, obj: LLMDecisionReview) -> SafeString:
        return _pretty(obj.config_json)


@admin.register(LLMStabilityProbe)
class LLMStabilityProbeAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "review",
        "kind",
        "artifact_hash",
        "original_verdict",
        "verdict",
        "flipped",
        "cost_usd",
        "error",
    )
    list_filter = ("kind", "flipped", "status")
    search_fields = ("artifact_hash", "response_sha256")
    date_hierarchy = "created_at"


@admin.register(LLMCircuitBreaker)
class LLMCircuitBreakerAdmin(ReadOnlyAdmin):
    list_display = ("key", "open_until", "trips", "error_times", "last_error", "updated_at")


@admin.register(LLMDspyWorkflowArtifact)
class LLMDspyWorkflowArtifactAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "lane",
        "status",
        "run_key",
        "program_name",
        "artifact_hash",
        "gate_compatibility",
        "promotion_target",
        "approved_by",
    )
    list_filter = ("lane", "status", "gate_compatibility", "promotion_target")
    search_fields = ("run_key", "artifact_hash", "dataset_hash", "eval_hash")
    date_hierarchy = "created_at"
    exclude = ("metric_bundle", "request_payload", "response_payload", "metadata")
    readonly_fields = ("stored_file", "metrics", "request", "response", "meta")

    @admin.display(description="stored file")
    def stored_file(self, obj: LLMDspyWorkflowArtifact) -> SafeString:
        if not obj.object_key:
            return format_html("{}", "—")
        try:
            url = object_url(obj.object_key)
        except ObjectStoreError as exc:
            return format_html("{} ({})", obj.object_key, exc.reason)
        return format_html('<a href="{}">{}</a>', url, obj.object_key)

    @admin.display(description="metric bundle")
    def metrics(self, obj: LLMDspyWorkflowArtifact) -> SafeString:
        return _pretty(obj.metric_bundle)

    @admin.display(description="request payload")
    def request(self, obj: LLMDspyWorkflowArtifact) -> SafeString:
        return _pretty(obj.request_payload)

    @admin.display(description="response payload")
    def response(self, obj: LLMDspyWorkflowArtifact) -> SafeString:
        return _pretty(obj.response_payload)

    @admin.display(description="metadata")
    def meta(self, obj: LLMDspyWorkflowArtifact) -> SafeString:
        return _pretty(obj.metadata)


@admin.register(LLMSpendDay)
class LLMSpendDayAdmin(ReadOnlyAdmin):
    """Spend by day (scope `all`) and by day and strategy, with the cost per 1,000 reviews."""

    list_display = ("day", "scope", "strategy", "spent_usd", "reviews", "cost_per_1000_reviews")
    list_filter = ("day", "strategy")
    date_hierarchy = "day"

    @admin.display(description="USD per 1,000 reviews")
    def cost_per_1000_reviews(self, row: LLMSpendDay) -> str:
        value = cost_per_1000_reviews(row)
        return "—" if value is None else str(value)


@admin.register(LLMSpendReservation)
class LLMSpendReservationAdmin(ReadOnlyAdmin):
    list_display = (
        "review",
        "call",
        "day",
        "strategy",
        "model",
        "estimated_usd",
        "actual_usd",
        "status",
        "created_at",
        "settled_at",
    )
    list_filter = ("status", "day", "model")
