"""The operators' dashboard page in the admin (`admin:ops_dashboard`, linked from the index):
the trading charts, server-rendered SVG from `ops.dashboard`'s selectors."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.safestring import SafeString

from ops.dashboard import DashboardData, dashboard_data
from ops.dashboard_ledger import ledger_data
from torghut_site.charts import BarSeries, LineSeries, bar_chart_svg, line_chart_svg


@dataclass(frozen=True)
class ChartPanel:
    key: str  # the panel's HTML id is chart-<key>
    title: str
    chart: SafeString
    note: str = ""


def dashboard_panels(data: DashboardData) -> list[ChartPanel]:
    """The charts of the dashboard page, in reading order."""
    return [*_account_panels(data), *_decision_panels(data), *_execution_panels(data)]


def _account_panels(data: DashboardData) -> list[ChartPanel]:
    return [
        ChartPanel(
            "equity",
            "Account equity (24 h)",
            line_chart_svg(
                [LineSeries(lane, points) for lane, points in data.equity.items()],
                label="account equity",
                empty_text="No account snapshot in the last 24 h.",
            ),
            "Mean equity per minute from the account snapshots, per lane.",
        ),
        ChartPanel(
            "pnl",
            "PnL (24 h)",
            line_chart_svg(
                [LineSeries(lane, points) for lane, points in data.pnl.items()],
                label="PnL",
                include_zero=True,
                empty_text="No account snapshot in the last 24 h.",
            ),
            "Equity minus the lane's first equity in the window.",
        ),
    ]


def _decision_panels(data: DashboardData) -> list[ChartPanel]:
    decided = sum(d.decisions for d in data.decisions)
    rejected = sum(d.rejected for d in data.decisions)
    return [
        ChartPanel(
            "decisions",
            "Decisions per strategy (24 h)",
            bar_chart_svg(
                [d.strategy for d in data.decisions],
                [
                    BarSeries("decisions", [d.decisions for d in data.decisions]),
                    BarSeries("rejected", [d.rejected for d in data.decisions]),
                ],
                label="decisions per strategy",
                empty_text="No decision in the last 24 h.",
            ),
            f"{decided} decision(s), {rejected} rejected.",
        ),
        ChartPanel(
            "rejects",
            "Rejects by reason (24 h)",
            bar_chart_svg(
                [r.reason for r in data.rejects],
                [BarSeries("rejected", [r.count for r in data.rejects])],
                label="rejects by reason",
                empty_text="No rejected decision in the last 24 h.",
            ),
        ),
    ]


def _execution_panels(data: DashboardData) -> list[ChartPanel]:
    fills = sum(f.fills for f in data.fills)
    events = sum(m.count for m in data.feed)
    symbols = [f.symbol for f in data.fills]
    return [
        ChartPanel(
            "fills",
            "Fills per symbol (24 h)",
            bar_chart_svg(
                symbols,
                [BarSeries("fills", [f.fills for f in data.fills])],
                label="fills per symbol",
                empty_text="No fill in the last 24 h.",
            ),
            f"{fills} fill(s) with transaction cost analysis.",
        ),
        ChartPanel(
            "slippage",
            "Mean slippage per symbol, bps (24 h)",
            bar_chart_svg(
                symbols,
                [BarSeries("slippage (bps)", [f.avg_slippage_bps for f in data.fills])],
                label="mean slippage in bps",
                value_format=",.2f",
                empty_text="No fill in the last 24 h.",
            ),
            "Fill price against the arrival price; positive is paid, negative is improvement.",
        ),
        ChartPanel(
            "feed",
            "Order-feed throughput, events per minute (1 h)",
            line_chart_svg(
                [LineSeries("events", [(m.minute, m.count) for m in data.feed])],
                label="order-feed events per minute",
                value_format=",.0f",
                include_zero=True,
            ),
            f"{events} event(s) stored in the last hour.",
        ),
    ]


def dashboard_view(request: HttpRequest, admin_site: AdminSite) -> TemplateResponse:
    if not request.user.has_perm("trading.view_tradedecision"):
        raise PermissionDenied
    data = dashboard_data()
    context = {
        **admin_site.each_context(request),
        "title": "Dashboard",
        "data": data,
        "panels": dashboard_panels(data),
        "ledger": ledger_data(now=data.now),
    }
    return TemplateResponse(request, "admin/torghut/dashboard.html", context)
