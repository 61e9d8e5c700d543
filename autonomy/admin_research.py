"""Admin pages of the research tools (issue #21): the nightly live-versus-replay checks, sweeps
with their chunks, and the trial registry. Read-only: each is written by its service only.
Registered when `autonomy.admin` is imported (Django's admin autodiscovery)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from autonomy.models import ReplayCheck, ResearchTrial, Sweep, SweepChunk
from torghut_site.admin_base import ReadOnlyAdmin


@admin.register(ReplayCheck)
class ReplayCheckAdmin(ReadOnlyAdmin):
    """The nightly live-versus-replay checks (`autonomy/replay.py` has the classes); written by
    `autonomy.services.replay_check` only."""

    date_hierarchy = "session_date"
    list_display = (
        "session_date",
        "account_label",
        "strategy",
        "status",
        "live_decisions",
        "replay_decisions",
        "matched",
        "data_gap",
        "timing",
        "fill_model",
        "live_gate",
        "rule_divergence",
        "modelled_slippage_bps",
        "realised_slippage_bps",
    )
    list_filter = ("status", "account_label", "strategy")
    search_fields = ("strategy__name", "account_label")
    list_select_related = ("strategy",)
    exclude = ("details",)
    readonly_fields = ("mismatch_table", "signal_gaps", "source")

    @admin.display(description="mismatches")
    def mismatch_table(self, obj: ReplayCheck) -> SafeString:
        rows = obj.details.get("mismatches", [])
        if not rows:
            return format_html("<p>{}</p>", "none")
        columns = ("class", "symbol", "event_ts", "seq", "side", "live_decision_id")
        extra = ("live_status", "live_reason", "replay_status", "replay_reason", "detail")
        head = format_html_join("", "<th>{}</th>", ((c,) for c in (*columns, *extra)))
        cells = (*columns, *extra)
        body = format_html_join(
            "",
            "<tr>{}</tr>",
            (
                (format_html_join("", "<td>{}</td>", ((row.get(c, ""),) for c in cells)),)
                for row in rows
            ),
        )
        left_off = obj.details.get("mismatches_left_off", 0)
        note = format_html("<p>{} more not stored</p>", left_off) if left_off else ""
        return format_html("<table><tr>{}</tr>{}</table>{}", head, body, note)

    @admin.display(description="recorded signal gaps")
    def signal_gaps(self, obj: ReplayCheck) -> str:
        gaps = obj.details.get("signal_gaps", [])
        return "; ".join(f"{g['symbol']} {g['after']} .. {g['before']}" for g in gaps) or "none"

    @admin.display(description="signal source")
    def source(self, obj: ReplayCheck) -> str:
        error = obj.details.get("signal_error", "")
        return f"{obj.details.get('signal_source', '')} {error}".strip()


class SweepChunkInline(admin.TabularInline[SweepChunk, Sweep]):
    model = SweepChunk
    fields = ("setting_index", "fold_index", "status", "attempts", "claimed_by", "claimed_at",
              "finished_at", "conflict_count", "result_sha256")  # fmt: skip
    readonly_fields = fields
    ordering = ("setting_index", "fold_index")
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _sweep_progress(sweep: Sweep) -> SafeString:
    return format_html(
        '<progress value="{}" max="{}"></progress> {}/{}',
        sweep.chunk_done,
        sweep.chunk_total,
        sweep.chunk_done,
        sweep.chunk_total,
    )


def _number(value: Any) -> str:
    return "—" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


LEADERBOARD_TOP = 10


@admin.register(Sweep)
class SweepAdmin(ReadOnlyAdmin):
    """Parameter sweeps: progress in the list, the leaderboard's top rows on the page, and the
    chunks (settings x folds) with their claims and attempts."""

    list_display = ("sweep_id", "family", "strategy_name", "status", "progress_view",
                    "created_at", "finished_at")  # fmt: skip
    list_filter = ("status", "family")
    search_fields = ("sweep_id", "family", "strategy_name")
    date_hierarchy = "created_at"
    fields = ("sweep_id", "family", "strategy_name", "status", "progress_view",
              "leaderboard_view", "dataset_sha256", "dataset_key", "report_sha256", "error",
              "created_at", "finished_at", "spec")  # fmt: skip
    readonly_fields = ("progress_view", "leaderboard_view")
    inlines = (SweepChunkInline,)

    @admin.display(description="progress")
    def progress_view(self, obj: Sweep) -> SafeString:
        return _sweep_progress(obj)

    @admin.display(description=f"leaderboard (top {LEADERBOARD_TOP})")
    def leaderboard_view(self, obj: Sweep) -> SafeString:
        board = (obj.report or {}).get("leaderboard") or []
        if not board:
            return format_html("{}", "— (no report yet)")
        names = [name for name, _ in (obj.report or {}).get("spec", {}).get("grid", [])]
        head = "".join(
            format_html("<th>{}</th>", h)
            for h in (
                "rank",
                "setting",
                "params",
                "net PnL",
                "trades",
                "Sharpe",
                "DSR",
                "PSR",
                "PBO",
                "trials",
            )  # fmt: skip
        )
        rows = "".join(
            format_html(
                "<tr>" + "<td>{}</td>" * 10 + "</tr>",
                e["rank"],
                e["setting"],
                " ".join(f"{k}={e['params'].get(k)}" for k in names),
                _number(e["net_pnl"]),
                e["trade_count"],
                _number(e["sharpe_ratio"]),
                _number(e["deflated_sharpe_ratio"]),
                _number(e["probabilistic_sharpe_ratio"]),
                _number(e["probability_of_backtest_overfitting"]),
                e["trial_count"],
            )
            for e in board[:LEADERBOARD_TOP]
        )
        return format_html(
            '<table class="sweep-leaderboard"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
            SafeString(head),
            SafeString(rows),
        )


@admin.register(SweepChunk)
class SweepChunkAdmin(ReadOnlyAdmin):
    list_display = ("sweep", "setting_index", "fold_index", "status", "attempts", "claimed_by",
                    "claimed_at", "conflict_count")  # fmt: skip
    list_filter = ("status",)
    search_fields = ("sweep__sweep_id", "claimed_by")
    list_select_related = ("sweep",)


@admin.register(ResearchTrial)
class ResearchTrialAdmin(ReadOnlyAdmin):
    """The trial registry the overfitting statistics count (read-only)."""

    list_display = ("trial_key", "family", "strategy_name", "source", "source_ref", "periods",
                    "sharpe_ratio", "net_pnl", "trade_count", "first_seen_at")  # fmt: skip
    list_filter = ("family", "source")
    search_fields = ("trial_key", "family", "strategy_name", "source_ref", "params_sha256")
    date_hierarchy = "first_seen_at"
