"""Reads behind the operators' dashboards in the admin.

- `glance()`: the admin index "at a glance": trading on/off, mode, kill switch, emergency stop,
  each lane's last cycle, last reconcile and signal lag, the order feed's consumer lag per
  partition as Kafka reports it (the last consumer-group probe, `order_feed_health`, with its
  reason codes), and the heartbeats of the long-running processes (a row past its expiry is
  `dead`), each with an ok/warn/bad level.
  Flags are read fresh (`flag_enabled`), never from a cached status.
- The chart selectors: one SQL aggregate each over a bounded window (24 h; the order feed's
  throughput over the last hour), returning typed rows that `ops.admin_dashboard`
  turns into SVG.

Levels: an age is ok within 3 of its intervals (the cycle's TRADING_POLL_MS, the reconcile's
TRADING_RECONCILE_MS, a heartbeat's period), warn within 10, bad beyond; a lane that never ran
while trading is on is bad. Signal lag is warn from TRADING_SIGNAL_STALE_LAG_ALERT_SECONDS and bad
from TRADING_ROLLBACK_SIGNAL_LAG_SECONDS_LIMIT (the emergency stop's limit), ok while the market
is closed. Consumer lag is ok up to one batch (TRADING_ORDER_FEED_BATCH_SIZE), warn up to ten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from django.conf import settings
from django.db.models import Avg, Count, Q, Sum
from django.db.models.functions import TruncMinute
from django.utils import timezone
from django.utils.text import slugify

from orderfeed.models import OrderEvent
from orderfeed.selectors import (
    KAFKA_UNREACHABLE,
    PROBE_STALE,
    FeedHealth,
    order_feed_probed_health,
)
from torghut_site.flags import flag_enabled
from torghut_site.models import HeartbeatKind, ProcessHeartbeat
from torghut_site.selectors import heartbeat_state
from trading.lanes import lane_configs
from trading.models import (
    ExecutionTcaMetric,
    LaneState,
    PositionSnapshot,
    SafetyState,
    TradeDecision,
)
from trading.selectors.safety import kill_switch_state

Level = Literal["ok", "warn", "bad"]
LEVELS: tuple[Level, ...] = ("ok", "warn", "bad")

CHART_WINDOW = timedelta(hours=24)
FEED_WINDOW_MINUTES = 60
HEARTBEAT_LOOKBACK = timedelta(hours=24)
CHART_LIMIT = 12  # categories per bar chart (largest first)

CYCLE_OK = frozenset({"ok", "no_signals"})
CYCLE_BAD = frozenset({"error", "signal_source_error"})


def worst(*levels: Level) -> Level:
    return max(levels, key=LEVELS.index, default="ok")


def age_level(age_seconds: float | None, *, interval_seconds: float) -> Level:
    """ok within 3 intervals, warn within 10, bad beyond or never."""
    if age_seconds is None:
        return "bad"
    if age_seconds <= 3 * interval_seconds:
        return "ok"
    if age_seconds <= 10 * interval_seconds:
        return "warn"
    return "bad"


def duration_text(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600:.0f} h"
    return f"{seconds // 86400:.0f} d"


def age_text(seconds: float | None) -> str:
    return "never" if seconds is None else f"{duration_text(seconds)} ago"


def _age(now: datetime, at: datetime | None) -> float | None:
    return None if at is None else max((now - at).total_seconds(), 0.0)


@dataclass(frozen=True)
class Tile:
    """One fact on the dashboard: `key` is its HTML id."""

    key: str
    label: str
    value: str
    level: Level
    detail: str = ""
    age_seconds: float | None = None
    number: int | None = None  # the count behind `value`, when there is one


@dataclass(frozen=True)
class LaneGlance:
    label: str
    mode: str
    broker: str
    cycle: Tile
    reconcile: Tile
    signal_lag: Tile

    @property
    def level(self) -> Level:
        return worst(self.cycle.level, self.reconcile.level, self.signal_lag.level)


@dataclass(frozen=True)
class Glance:
    trading: Tile
    mode: Tile
    kill_switch: Tile
    emergency_stop: Tile
    lanes: list[LaneGlance]
    order_feed: Tile
    partitions: list[Tile]
    heartbeats: list[Tile]
    as_of: datetime

    @property
    def safety(self) -> list[Tile]:
        return [self.trading, self.mode, self.kill_switch, self.emergency_stop]

    @property
    def level(self) -> Level:
        return worst(
            *(t.level for t in self.safety),
            *(lane.level for lane in self.lanes),
            self.order_feed.level,
            *(t.level for t in self.partitions),
            *(t.level for t in self.heartbeats),
        )


# ------------------------------------------------------------------ at a glance


def glance(*, now: datetime | None = None) -> Glance:
    """Everything the admin index shows at a glance: four queries (the kill switch, the safety
    row, the lanes' state, the heartbeats of the last 24 h) plus fresh flag reads."""
    now = now or timezone.now()
    trading_on = flag_enabled("TRADING_ENABLED")
    kill = kill_switch_state()
    safety = SafetyState.objects.filter(scope="global").first()
    states = {s.account_label: s for s in LaneState.objects.all()}
    beats = list(
        ProcessHeartbeat.objects.filter(last_seen_at__gte=now - HEARTBEAT_LOOKBACK).order_by(
            "kind", "-last_seen_at", "name"
        )
    )
    feed_on = flag_enabled("TRADING_ORDER_FEED_ENABLED")
    lanes = lane_configs()
    feed = (
        order_feed_probed_health(now=now)
        if feed_on and settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS
        else None
    )
    partitions = _partition_tiles(feed)
    return Glance(
        trading=Tile(
            "trading-enabled",
            "Trading",
            "enabled" if trading_on else "disabled",
            "ok" if trading_on else "warn",
            "" if trading_on else "TRADING_ENABLED is off: no cycle reads signals",
        ),
        mode=_mode_tile(),
        kill_switch=(
            Tile("kill-switch", "Kill switch", "ENGAGED", "bad", f"{kill.source}: {kill.reason}")
            if kill.active
            else Tile("kill-switch", "Kill switch", "off", "ok")
        ),
        emergency_stop=_emergency_tile(safety),
        lanes=[
            _lane_glance(
                lane.label,
                lane.mode,
                lane.broker,
                states.get(lane.label),
                trading_on=trading_on,
                now=now,
            )
            if lane.enabled
            else _lane_disabled(lane.label, lane.mode, lane.broker)
            for lane in lanes
        ],
        order_feed=_order_feed_tile(feed_on, feed, beats, partitions, now=now),
        partitions=partitions,
        heartbeats=_heartbeat_tiles(
            beats,
            expected=_expected_kinds(
                feed_on=feed_on,
                alpaca_lane=any(lane.enabled and lane.broker == "alpaca" for lane in lanes),
            ),
            now=now,
        ),
        as_of=now,
    )


def _mode_tile() -> Tile:
    if settings.TRADING_MODE != "live":
        return Tile("trading-mode", "Mode", settings.TRADING_MODE, "ok")
    if flag_enabled("TRADING_LIVE_ENABLED"):
        return Tile(
            "trading-mode", "Mode", "live", "warn", "live orders for lanes with a live approval"
        )
    return Tile(
        "trading-mode", "Mode", "live", "warn", "TRADING_LIVE_ENABLED is off: no live order"
    )


def _emergency_tile(safety: Any) -> Tile:
    if safety is not None and safety.emergency_stop_active:
        return Tile(
            "emergency-stop",
            "Emergency stop",
            "LATCHED",
            "bad",
            ", ".join(safety.emergency_stop_reasons),
        )
    if not flag_enabled("TRADING_EMERGENCY_STOP_ENABLED"):
        return Tile(
            "emergency-stop",
            "Emergency stop",
            "disarmed",
            "warn",
            "TRADING_EMERGENCY_STOP_ENABLED is off: nothing latches automatically",
        )
    return Tile("emergency-stop", "Emergency stop", "clear", "ok")


def _lane_disabled(label: str, mode: str, broker: str) -> LaneGlance:
    key = f"lane-{slugify(label)}"
    return LaneGlance(
        label,
        mode,
        broker,
        Tile(f"{key}-cycle", "Last cycle", "lane disabled", "warn"),
        Tile(f"{key}-reconcile", "Last reconcile", "lane disabled", "warn"),
        Tile(f"{key}-signal-lag", "Signal lag", "lane disabled", "warn"),
    )


def _lane_glance(
    label: str, mode: str, broker: str, state: Any, *, trading_on: bool, now: datetime
) -> LaneGlance:
    key = f"lane-{slugify(label)}"
    poll = settings.TRADING_POLL_MS / 1000
    never: Level = "bad" if trading_on else "warn"
    finished = _age(now, state.last_cycle_finished_at) if state else None
    status = state.last_cycle_status if state else ""
    if finished is None:
        cycle = Tile(f"{key}-cycle", "Last cycle", "never", never, "no cycle has finished")
    else:
        status_level: Level = (
            "ok" if status in CYCLE_OK else "bad" if status in CYCLE_BAD else "warn"
        )
        cycle = Tile(
            f"{key}-cycle",
            "Last cycle",
            f"{status or '—'} · {age_text(finished)}",
            worst(status_level, age_level(finished, interval_seconds=poll)),
            state.last_error if status in CYCLE_BAD else "",
            finished,
        )
    reconciled = _age(now, state.last_reconcile_at) if state else None
    reconcile = Tile(
        f"{key}-reconcile",
        "Last reconcile",
        age_text(reconciled),
        never
        if reconciled is None
        else age_level(reconciled, interval_seconds=settings.TRADING_RECONCILE_MS / 1000),
        age_seconds=reconciled,
    )
    return LaneGlance(label, mode, broker, cycle, reconcile, _signal_lag_tile(key, state))


def _signal_lag_tile(key: str, state: Any) -> Tile:
    streak = _no_signal_streak_tile(key, state)
    if streak is not None:
        return streak
    lag = state.signal_lag_seconds if state else None
    if lag is None:
        reason = state.no_signal_reason if state else ""
        return Tile(f"{key}-signal-lag", "Signal lag", "no signal yet", "warn", reason)
    value = duration_text(lag)
    if state.market_open is False:
        return Tile(f"{key}-signal-lag", "Signal lag", value, "ok", "market closed")
    level: Level = (
        "bad"
        if lag >= settings.TRADING_ROLLBACK_SIGNAL_LAG_SECONDS_LIMIT
        else "warn"
        if lag >= settings.TRADING_SIGNAL_STALE_LAG_ALERT_SECONDS
        else "ok"
    )
    return Tile(f"{key}-signal-lag", "Signal lag", value, level, state.no_signal_reason)


def _no_signal_streak_tile(key: str, state: Any) -> Tile | None:
    """Cycles in a row without signals, from TRADING_SIGNAL_NO_SIGNAL_STREAK_ALERT_THRESHOLD on
    (warn); bad once a critical reason reaches the emergency stop's streak limit. A market-closed
    reason the configuration expects is not an alert."""
    if state is None or not state.no_signal_reason:
        return None
    streak, reason = state.no_signal_streak, state.no_signal_reason
    expected = reason in settings.TRADING_SIGNAL_MARKET_CLOSED_EXPECTED_REASONS
    if streak < settings.TRADING_SIGNAL_NO_SIGNAL_STREAK_ALERT_THRESHOLD or (
        state.market_open is False and expected
    ):
        return None
    critical = reason in settings.TRADING_SIGNAL_STALENESS_ALERT_CRITICAL_REASONS
    limit = settings.TRADING_ROLLBACK_SIGNAL_STALENESS_ALERT_STREAK_LIMIT
    level: Level = "bad" if critical and streak >= limit else "warn"
    return Tile(f"{key}-signal-lag", "Signal lag", f"no signals for {streak} cycles", level, reason)


def _interval(kind: str) -> float:
    if kind in (HeartbeatKind.CELERY_WORKER, HeartbeatKind.CELERY_BEAT):
        return float(settings.CELERY_WORKER_HEARTBEAT_SECONDS)
    return float(settings.KAFKA_CONSUMER_HEARTBEAT_SECONDS)


def _expected_kinds(*, feed_on: bool, alpaca_lane: bool) -> list[str]:
    """The processes this configuration needs running."""
    kinds: list[str] = [HeartbeatKind.CELERY_WORKER, HeartbeatKind.CELERY_BEAT]
    if feed_on:
        kinds.append(HeartbeatKind.ORDERFEED_CONSUMER)
        if alpaca_lane:
            kinds.append(HeartbeatKind.TRADE_UPDATES_BRIDGE)
    if settings.TRADING_SIGNAL_SOURCE == "kafka":
        kinds.append(HeartbeatKind.SIGNAL_CONSUMER)
    if settings.WHITEPAPER_KAFKA_ENABLED:
        kinds.append(HeartbeatKind.WHITEPAPER_CONSUMER)
    return kinds


def _state(beat: ProcessHeartbeat, now: datetime) -> str:
    """The row's state as every reader shows it (`dead` past its expiry)."""
    return heartbeat_state(
        state=str(beat.details.get("state", "")), expires_at=beat.expires_at, now=now
    )


def _is_live(beat: ProcessHeartbeat, now: datetime) -> bool:
    return _state(beat, now) not in ("dead", "stopped")


def _heartbeat_tiles(
    beats: list[ProcessHeartbeat], *, expected: list[str], now: datetime
) -> list[Tile]:
    """One tile per process kind (expected, or heard from in the last 24 h): ok when one of its
    processes beat within 3 periods; otherwise the freshest running one's age decides, and a
    kind whose processes all stopped, or that nothing heard from, is bad. A kind this
    configuration does not need is at most warn."""
    tiles = []
    labels = dict(HeartbeatKind.choices)
    seen = {b.kind for b in beats}
    for kind in [k for k in HeartbeatKind.values if k in expected or k in seen]:
        rows = [b for b in beats if b.kind == kind]  # freshest first
        live = [b for b in rows if _is_live(b, now)]
        dead = [b for b in rows if _state(b, now) == "dead"]
        freshest = _age(now, rows[0].last_seen_at) if rows else None
        level: Level
        if live:
            level, value = "ok", f"{len(live)} live · {age_text(freshest)}"
        elif dead:
            age = _age(now, dead[0].last_seen_at)
            level = worst("warn", age_level(age, interval_seconds=_interval(kind)))
            value = f"dead · {age_text(age)}"
        elif rows:
            level, value = "bad", f"stopped · {age_text(freshest)}"
        else:
            level, value = "bad", "no heartbeat in 24 h"
        if kind not in expected and level == "bad":
            level = "warn"
        tiles.append(
            Tile(
                f"heartbeat-{kind.replace('_', '-')}",
                labels[kind],
                value,
                level,
                ", ".join(b.name for b in (live or rows)[:5]),
                freshest,
            )
        )
    return tiles


def _lag_level(lag: int) -> Level:
    batch = settings.TRADING_ORDER_FEED_BATCH_SIZE
    return "ok" if lag <= batch else "warn" if lag <= 10 * batch else "bad"


def _partition_tiles(feed: FeedHealth | None) -> list[Tile]:
    """Lag per partition as Kafka last told it (the group's committed offset against the end of
    the log; `order_feed_health`), not as a consumer reported it: a dead consumer's last "0
    behind" does not show. A partition that no member holds or whose offsets stalled is bad; a
    stale sample is at least warn."""
    if feed is None:
        return []
    stale: Level = (
        "warn" if PROBE_STALE in feed.reasons or KAFKA_UNREACHABLE in feed.reasons else "ok"
    )
    tiles = []
    for p in feed.partitions:
        name = f"{p.topic}[{p.partition}]"
        problems = [
            *(["no consumer"] if not p.assigned else []),
            *(["offsets stalled"] if p.stalled else []),
        ]
        committed = "none" if p.committed is None else f"{p.committed:,}"
        tiles.append(
            Tile(
                f"lag-{slugify(name)}",
                name,
                f"{p.lag:,} behind",
                worst(_lag_level(p.lag), stale, "bad" if problems else "ok"),
                ", ".join([*problems, f"committed {committed} of {p.end_offset:,}"]),
                feed.probe_age_seconds,
                p.lag,
            )
        )
    return tiles


def _order_feed_tile(
    feed_on: bool,
    feed: FeedHealth | None,
    beats: list[ProcessHeartbeat],
    partitions: list[Tile],
    *,
    now: datetime,
) -> Tile:
    """Kafka's view of the feed (`order_feed_health`): bad with its reason codes when degraded,
    else the lag over every partition."""
    if not feed_on:
        return Tile(
            "order-feed", "Order feed", "off", "ok", "broker updates are applied in the cycle"
        )
    if feed is None:
        return Tile(
            "order-feed", "Order feed", "no Kafka", "bad", "TRADING_ORDER_FEED_BOOTSTRAP_SERVERS"
        )
    live = [b for b in beats if b.kind == HeartbeatKind.ORDERFEED_CONSUMER and _is_live(b, now)]
    consumers = f"{len(live)} live consumer(s)"
    if feed.reasons:
        detail = f"{consumers}; {feed.error}" if feed.error else consumers
        return Tile(
            "order-feed", "Order feed", ", ".join(feed.reasons), "bad", detail, number=feed.lag
        )
    return Tile(
        "order-feed",
        "Order feed",
        f"{feed.lag:,} behind on {len(partitions)} partition(s)",
        worst(*(t.level for t in partitions)),
        consumers,
        number=feed.lag,
    )


# ------------------------------------------------------------------ charts


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
