"""Trading admin: strategies editable; decisions, executions and audit rows read-only; safety
controls as audited actions that always ask for a reason."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from torghut_site.admin_base import ReadOnlyAdmin
from trading.admin_fill_checks import FillCheckAdmin
from trading.admin_live_approvals import LiveApprovalAdmin
from trading.admin_llm import review_summary
from trading.admin_notifications import NotificationAdmin
from trading.models import (
    AccountLane,
    Execution,
    ExecutionTcaMetric,
    FillCheck,
    Incident,
    LaneState,
    LiveApproval,
    LLMDecisionReview,
    Notification,
    PositionSnapshot,
    SafetyEvent,
    SafetyState,
    Strategy,
    TaSignal,
    TradeCursor,
    TradeDecision,
)
from trading.services.safety import SafetyActionError, emergency_stop_clear, kill_switch_set
from trading.services.strategies import (
    EDITABLE_FIELDS,
    PROMOTE_PERMISSION,
    RISK_FIELDS,
    StrategyChangeError,
    strategy_admin_change,
    strategy_admin_delete,
    strategy_change_check,
)


class StrategyAdminForm(forms.ModelForm[Strategy]):
    """Refuses, as a form error, a change its user may not make (`strategy_change_check`)."""

    actor: Any = None  # the signed-in user, set per request by `StrategyAdmin.get_form`

    class Meta:
        model = Strategy
        fields = EDITABLE_FIELDS

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        changes = {name: cleaned[name] for name in self.fields if name in cleaned}
        try:
            strategy_change_check(strategy_id=self.instance.pk, changes=changes, actor=self.actor)
        except StrategyChangeError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from exc
        return cleaned


@admin.register(Strategy)
class StrategyAdmin(admin.ModelAdmin[Strategy]):
    """Strategies. Adding, deleting and changing a risk-bearing field is a promotion
    (`trading.promote_strategy`; on a live lane also `trading.change_live_strategy` and a live
    approval in force): without it those fields are read-only. Every save and delete goes through
    `trading.services.strategies`, which checks again under a row lock and writes a
    `SafetyEvent`. No bulk actions, no list editing: they would write around it."""

    form = StrategyAdminForm
    actions = None
    list_display = (
        "name",
        "strategy_type",
        "version",
        "enabled",
        "base_timeframe",
        "priority",
        "max_notional_per_trade",
        "max_position_pct_equity",
        "source",
        "uncertainty_action",
        "degraded_until",
    )
    list_filter = ("enabled", "strategy_type", "source", "uncertainty_action")
    search_fields = ("name", "description")
    readonly_fields = (
        "source",
        "catalog_hash",
        "uncertainty_action",  # written by the autonomy promotion from the run's gate 7
        "promotion_ref",  # provenance, written by the autonomy promotion (cleared by changes)
        "promotion_candidate_id",
        "consecutive_errors",
        "degraded_until",
        "last_error",
        "created_at",
        "updated_at",
    )

    def _may_promote(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PROMOTE_PERMISSION)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        readonly = tuple(super().get_readonly_fields(request, obj))
        if self._may_promote(request):
            return readonly
        return (*RISK_FIELDS, *readonly)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and self._may_promote(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and self._may_promote(request)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm[Strategy]]:
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def save_model(
        self, request: HttpRequest, obj: Strategy, form: forms.ModelForm[Strategy], change: bool
    ) -> None:
        changes = {name: getattr(obj, name) for name in form.fields if name in EDITABLE_FIELDS}
        try:
            saved = strategy_admin_change(
                strategy_id=obj.pk if change else None, changes=changes, actor=request.user
            )
        except StrategyChangeError as exc:  # changed since the form was checked
            raise PermissionDenied(exc.message) from exc
        obj.pk = saved.pk
        obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: Strategy) -> None:
        try:
            strategy_admin_delete(strategy_id=obj.pk, actor=request.user)
        except StrategyChangeError as exc:
            raise PermissionDenied(exc.message) from exc

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Strategy]) -> None:
        for strategy in queryset.order_by("pk"):
            self.delete_model(request, strategy)


class ExecutionInline(admin.TabularInline[Execution, TradeDecision]):
    model = Execution
    extra = 0
    can_delete = False
    fields = (
        "link",
        "broker",
        "broker_order_id",
        "status",
        "submitted_qty",
        "filled_qty",
        "avg_fill_price",
        "adopted",
        "last_update_at",
    )
    readonly_fields = fields

    def link(self, obj: Execution) -> SafeString:
        url = reverse("admin:trading_execution_change", args=[obj.pk])
        return format_html('<a href="{}">execution {}</a>', url, obj.pk)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(TradeDecision)
class TradeDecisionAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "account_label",
        "strategy",
        "symbol",
        "action",
        "qty",
        "order_type",
        "price",
        "limit_price",
        "status",
        "reject_reason",
        "client_order_id",
        "strategy_version",
        "promotion_ref",
    )
    list_filter = ("status", "reject_reason", "strategy", "account_label", "action")
    search_fields = ("symbol", "client_order_id", "decision_hash")
    date_hierarchy = "created_at"
    inlines = [ExecutionInline]
    readonly_fields = ("gates", "llm_review", "transitions_table")

    @admin.display(description="LLM review")
    def llm_review(self, obj: TradeDecision) -> SafeString:
        review = LLMDecisionReview.objects.filter(decision=obj).first()
        if review is None:
            return format_html("{}", "— (no review)")
        return review_summary(review)

    def gates(self, obj: TradeDecision) -> SafeString:
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    v.get("gate"),
                    "pass" if v.get("passed") else "REJECT",
                    ", ".join(v.get("reasons", [])),
                )
                for v in obj.gate_verdicts
            ),
        )
        return format_html(
            "<table><tr><th>gate</th><th>verdict</th><th>reasons</th></tr>{}</table>", rows
        )

    def transitions_table(self, obj: TradeDecision) -> SafeString:
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{} → {}</td><td>{}</td></tr>",
            ((t.at, t.from_status or "∅", t.to_status, t.reason) for t in obj.transitions.all()),
        )
        return format_html("<table>{}</table>", rows)


@admin.register(Execution)
class ExecutionAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "account_label",
        "symbol",
        "side",
        "order_type",
        "submitted_qty",
        "filled_qty",
        "limit_price",
        "avg_fill_price",
        "status",
        "adopted",
        "unknown_order",
        "client_order_id",
    )
    list_filter = ("status", "account_label", "adopted", "unknown_order", "broker")
    search_fields = ("symbol", "client_order_id", "broker_order_id")
    date_hierarchy = "created_at"
    readonly_fields = ("decision_link", "tca_row", "transitions_table", "order_events_link")

    def decision_link(self, obj: Execution) -> SafeString:
        if obj.decision_id is None:
            return format_html("{}", "— (not sent by torghut)")
        url = reverse("admin:trading_tradedecision_change", args=[obj.decision_id])
        return format_html('<a href="{}">decision {}</a>', url, obj.decision_id)

    def order_events_link(self, obj: Execution) -> SafeString:
        url = reverse("admin:orderfeed_orderevent_changelist")
        count = obj.order_events.count()
        return format_html(
            '<a href="{}?execution__id__exact={}">{} order-feed events</a>', url, obj.pk, count
        )

    def tca_row(self, obj: Execution) -> str:
        tca = ExecutionTcaMetric.objects.filter(execution=obj).first()
        if tca is None:
            return "—"
        return (
            f"arrival {tca.arrival_price} fill {tca.avg_fill_price} slippage {tca.slippage_bps} bps"
        )

    def transitions_table(self, obj: Execution) -> SafeString:
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{} → {}</td><td>{}</td><td>{}</td></tr>",
            (
                (t.at, t.from_status or "∅", t.to_status, t.filled_qty, t.source)
                for t in obj.transitions.all()
            ),
        )
        return format_html("<table>{}</table>", rows)


@admin.register(ExecutionTcaMetric)
class TcaAdmin(ReadOnlyAdmin):
    list_display = (
        "computed_at",
        "account_label",
        "symbol",
        "side",
        "arrival_price",
        "avg_fill_price",
        "filled_qty",
        "slippage_bps",
        "shortfall_notional",
        "client_order_id",
    )
    list_filter = ("account_label", "symbol")
    search_fields = ("symbol", "execution__client_order_id")
    list_select_related = ("execution",)
    date_hierarchy = "computed_at"

    @admin.display(description="client order id", ordering="execution__client_order_id")
    def client_order_id(self, obj: ExecutionTcaMetric) -> str:
        return obj.execution.client_order_id


@admin.register(PositionSnapshot)
class PositionSnapshotAdmin(ReadOnlyAdmin):
    list_display = ("as_of", "account_label", "equity", "cash", "buying_power")
    list_filter = ("account_label",)
    date_hierarchy = "as_of"


@admin.register(TradeCursor)
class TradeCursorAdmin(ReadOnlyAdmin):
    list_display = (
        "source",
        "account_label",
        "cursor_at",
        "cursor_symbol",
        "cursor_seq",
        "updated_at",
    )


@admin.register(AccountLane)
class AccountLaneAdmin(ReadOnlyAdmin):
    list_display = ("label", "mode", "broker", "enabled", "updated_at")


@admin.register(LaneState)
class LaneStateAdmin(ReadOnlyAdmin):
    list_display = (
        "account_label",
        "last_cycle_status",
        "last_cycle_finished_at",
        "last_reconcile_at",
        "signal_lag_seconds",
        "no_signal_reason",
        "no_signal_streak",
        "lease_owner",
    )
    readonly_fields = ("strategy_books",)

    @admin.display(description="Strategy books")
    def strategy_books(self, obj: LaneState) -> SafeString:
        """The lane's per-strategy books, derived from its filled executions."""
        from trading.selectors.books import lane_books, lane_marks

        lines = lane_books(
            account_label=obj.account_label, marks=lane_marks(account_label=obj.account_label)
        )
        if not lines:
            return format_html("<p>{}</p>", "No filled executions.")
        header = (
            "Strategy", "Symbol", "Position", "Avg cost", "Realised PnL", "Mark",
            "Unrealised PnL", "Bought", "Sold", "Buy notional", "Sell notional",
        )  # fmt: skip
        rows = format_html_join(
            "",
            "<tr>" + "<td>{}</td>" * len(header) + "</tr>",
            (
                (
                    line.strategy or "(unattributed)",
                    line.symbol,
                    line.position,
                    _or_dash(line.avg_cost),
                    line.realised_pnl,
                    _or_dash(line.mark),
                    _or_dash(line.unrealised_pnl),
                    line.buy_qty,
                    line.sell_qty,
                    line.buy_notional,
                    line.sell_notional,
                )  # fmt: skip
                for line in lines
            ),
        )
        head = format_html_join("", "<th>{}</th>", ((h,) for h in header))
        return format_html(
            '<table id="strategy-books"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
            head,
            rows,
        )


def _or_dash(value: object) -> object:
    return "—" if value is None else value


@admin.register(SafetyEvent)
class SafetyEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "kind", "account_label", "actor_label", "reason")
    list_filter = ("kind", "account_label")
    date_hierarchy = "at"


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "incident_key",
        "kind",
        "account_label",
        "symbol",
        "resolved_at",
        "artifact_path",
    )
    list_filter = ("kind", "account_label")
    search_fields = ("incident_key", "symbol")
    date_hierarchy = "created_at"


admin.site.register(LiveApproval, LiveApprovalAdmin)
admin.site.register(FillCheck, FillCheckAdmin)
admin.site.register(Notification, NotificationAdmin)


class SafetyActionForm(forms.Form):
    ACTIONS = (
        ("kill_switch_on", "Engage the kill switch (cancel open orders, block submissions)"),
        ("kill_switch_off", "Release the manual kill switch"),
        ("emergency_stop_clear", "Clear the latched emergency stop"),
    )
    action = forms.ChoiceField(choices=ACTIONS)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)


@admin.register(SafetyState)
class SafetyStateAdmin(ReadOnlyAdmin):
    """The safety controls page: current state plus audited actions that need a reason."""

    list_display = (
        "scope",
        "kill_switch_engaged",
        "emergency_stop_active",
        "emergency_stop_reasons",
        "updated_at",
    )

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "controls/",
                self.admin_site.admin_view(self.controls_view),
                name="trading_safety_controls",
            )
        ]
        return custom + super().get_urls()

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:trading_safety_controls"))

    def controls_view(self, request: HttpRequest) -> HttpResponse:
        from trading.selectors.trading import trading_status

        if not self.has_view_permission(request):  # view_safetystate or change_safetystate
            raise PermissionDenied
        allowed = request.user.has_perm("trading.change_safetystate")
        form = SafetyActionForm(request.POST or None)
        if request.method == "POST" and allowed and form.is_valid():
            action, reason = form.cleaned_data["action"], form.cleaned_data["reason"]
            try:
                if action == "emergency_stop_clear":
                    emergency_stop_clear(actor=request.user, reason=reason)
                else:
                    kill_switch_set(
                        engaged=action == "kill_switch_on", actor=request.user, reason=reason
                    )
            except SafetyActionError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, f"{dict(SafetyActionForm.ACTIONS)[action]}: done")
                return HttpResponseRedirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "title": "Safety controls",
            "form": form,
            "allowed": allowed,
            "status": trading_status(),
            "events": SafetyEvent.objects.select_related("actor")[:20],
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/trading/safety_controls.html", context)


@admin.register(TaSignal)
class TaSignalAdmin(ReadOnlyAdmin):
    """TA signal rows stored by `run_signal_consumer` (the `kafka` signal source)."""

    list_display = ("event_ts", "symbol", "seq", "source_topic", "source_offset", "received_at")
    search_fields = ("symbol",)
    date_hierarchy = "event_ts"
