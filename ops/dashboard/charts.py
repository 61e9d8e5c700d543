"""The dashboard page's charts: equity and PnL per lane, decisions per strategy, rejects per
reason, fills per symbol and order events per minute."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Avg, Count, Q, Sum
from django.db.models.functions import TruncMinute
from django.utils import timezone

from ops.dashboard.levels import CHART_LIMIT, CHART_WINDOW, FEED_WINDOW_MINUTES
from orderfeed.models import OrderEvent
from trading.models import ExecutionTcaMetric, PositionSnapshot, TradeDecision


@dataclass(frozen=True)
class StrategyDecisions:
    strategy: str
    decisions: int
    rejected: int


@dataclass(frozen=True)
class ReasonCount:
    reason: str
    count: int


@dataclass(frozen=True)
class SymbolFills:
    symbol: str
    fills: int
    avg_slippage_bps: Decimal | None
    shortfall_notional: Decimal


@dataclass(frozen=True)
class MinuteCount:
    minute: datetime
    count: int


@dataclass(frozen=True)
class DashboardData:
    now: datetime
    since: datetime
    feed_since: datetime
    equity: dict[str, list[tuple[datetime, Decimal]]]
    decisions: list[StrategyDecisions]
    rejects: list[ReasonCount]
    fills: list[SymbolFills]
    feed: list[MinuteCount] = field(default_factory=list)

    @property
    def pnl(self) -> dict[str, list[tuple[datetime, Decimal]]]:
        return pnl_by_lane(self.equity)


def equity_by_lane(*, since: datetime) -> dict[str, list[tuple[datetime, Decimal]]]:
    """Each lane's account equity per minute since `since` (the mean of the minute's
    snapshots; the cycle and the reconcile both take them), oldest first. One query."""
    rows = (
        PositionSnapshot.objects.filter(as_of__gte=since)
        .annotate(minute=TruncMinute("as_of"))
        .values("account_label", "minute")
        .annotate(equity=Avg("equity"))
        .order_by("account_label", "minute")
    )
    out: dict[str, list[tuple[datetime, Decimal]]] = {}
    for row in rows:
        out.setdefault(row["account_label"], []).append(
            (row["minute"], Decimal(row["equity"]).quantize(Decimal("0.01")))
        )
    return out


def pnl_by_lane(
    equity: dict[str, list[tuple[datetime, Decimal]]],
) -> dict[str, list[tuple[datetime, Decimal]]]:
    """PnL over the window: each point's equity minus the lane's first equity in it."""
    return {
        lane: [(at, value - points[0][1]) for at, value in points]
        for lane, points in equity.items()
        if points
    }


def decisions_by_strategy(*, since: datetime, limit: int = CHART_LIMIT) -> list[StrategyDecisions]:
    """Decisions and rejected decisions per strategy since `since`, most decisions first. One
    query."""
    rows = (
        TradeDecision.objects.filter(created_at__gte=since)
        .values("strategy__name")
        .annotate(decisions=Count("pk"), rejected=Count("pk", filter=Q(status="rejected")))
        .order_by("-decisions", "strategy__name")[:limit]
    )
    return [StrategyDecisions(r["strategy__name"], r["decisions"], r["rejected"]) for r in rows]


def rejects_by_reason(*, since: datetime, limit: int = CHART_LIMIT) -> list[ReasonCount]:
    """Rejected decisions per reject reason since `since`, most frequent first. One query."""
    rows = (
        TradeDecision.objects.filter(created_at__gte=since, status="rejected")
        .values("reject_reason")
        .annotate(n=Count("pk"))
        .order_by("-n", "reject_reason")[:limit]
    )
    return [ReasonCount(r["reject_reason"], r["n"]) for r in rows]


def fills_by_symbol(*, since: datetime, limit: int = 20) -> list[SymbolFills]:
    """Transaction cost analysis per symbol since `since`: fills (TCA rows), mean slippage in
    bps (positive = paid) and the implementation shortfall, by symbol. One query."""
    rows = (
        ExecutionTcaMetric.objects.filter(computed_at__gte=since)
        .values("symbol")
        .annotate(
            fills=Count("pk"),
            slippage=Avg("slippage_bps"),
            shortfall=Sum("shortfall_notional"),
        )
        .order_by("-fills", "symbol")[:limit]
    )
    return [
        SymbolFills(
            r["symbol"],
            r["fills"],
            None if r["slippage"] is None else Decimal(r["slippage"]).quantize(Decimal("0.01")),
            Decimal(r["shortfall"] or 0).quantize(Decimal("0.01")),
        )
        for r in rows
    ]


def feed_window_start(now: datetime, minutes: int = FEED_WINDOW_MINUTES) -> datetime:
    return now.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)


def order_events_per_minute(
    *, now: datetime, minutes: int = FEED_WINDOW_MINUTES
) -> list[MinuteCount]:
    """Order-feed events stored per minute over the last `minutes` minutes (the current one
    included), a zero for each quiet minute. One query."""
    start = feed_window_start(now, minutes)
    counts = dict(
        OrderEvent.objects.filter(received_at__gte=start)
        .annotate(minute=TruncMinute("received_at"))
        .values_list("minute")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return [
        MinuteCount(m, counts.get(m, 0))
        for m in (start + timedelta(minutes=i) for i in range(minutes))
    ]


def dashboard_data(*, now: datetime | None = None) -> DashboardData:
    """What the dashboard page draws: five queries."""
    now = now or timezone.now()
    since = now - CHART_WINDOW
    return DashboardData(
        now=now,
        since=since,
        feed_since=feed_window_start(now),
        equity=equity_by_lane(since=since),
        decisions=decisions_by_strategy(since=since),
        rejects=rejects_by_reason(since=since),
        fills=fills_by_symbol(since=since),
        feed=order_events_per_minute(now=now),
    )
