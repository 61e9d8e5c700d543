"""Reads behind the trading API and admin."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Avg, Count, QuerySet, Sum
from django.utils import timezone

from torghut_site.flags import FlagResolution, flag_enabled, flags_snapshot
from torghut_site.metrics import counter_totals
from torghut_site.models import HeartbeatKind
from trading.lanes import LaneConfig, lane_configs
from trading.models import ExecutionTcaMetric, LaneState, SafetyState, TradeDecision
from trading.ports import order_feed_status, status_sections
from trading.selectors.llm import llm_evaluation, llm_status
from trading.selectors.safety import kill_switch_of
from trading.selectors.status import (
    clickhouse_health,
    control_plane_contract,
    heartbeats_health,
    lanes_rollup,
)
from trading.selectors.trade_stream import trade_stream_health, trade_stream_watched
from trading.status_cache import status_cached

MAX_LIMIT = 500
COUNTER_PREFIX = "torghut_trading_"


def trading_counter_totals() -> dict[str, float]:
    """The `metrics` block: every `torghut_trading_*` counter, summed over its labels and, with
    PROMETHEUS_MULTIPROC_DIR, over this host's processes (what /metrics reads), by its series
    name without the prefix (`decisions_total`)."""
    return counter_totals(prefix=COUNTER_PREFIX)


def tca_rows(
    *, symbol: str | None = None, strategy_id: int | None = None, since: datetime | None = None
) -> QuerySet[ExecutionTcaMetric]:
    rows = ExecutionTcaMetric.objects.order_by("-computed_at", "-pk")
    if symbol:
        rows = rows.filter(symbol=symbol.upper())
    if strategy_id:
        rows = rows.filter(strategy_id=strategy_id)
    if since:
        rows = rows.filter(computed_at__gte=since)
    return rows


def tca_summary(rows: QuerySet[ExecutionTcaMetric]) -> dict[str, Any]:
    agg = rows.aggregate(
        order_count=Count("pk"),
        avg_slippage_bps=Avg("slippage_bps"),
        total_shortfall_notional=Sum("shortfall_notional"),
    )
    by_strategy = list(
        rows.values("strategy_id")
        .annotate(order_count=Count("pk"), avg_slippage_bps=Avg("slippage_bps"))
        .order_by("strategy_id")
    )
    by_symbol = list(
        rows.values("symbol")
        .annotate(order_count=Count("pk"), avg_slippage_bps=Avg("slippage_bps"))
        .order_by("symbol")
    )
    return {"summary": agg, "by_strategy": by_strategy, "by_symbol": by_symbol}


def tca_summary_cached(
    *,
    symbol: str | None = None,
    strategy_id: int | None = None,
    since: datetime | None = None,
) -> dict[str, Any]:
    """`tca_summary` of the matching rows of the last TRADING_TCA_SUMMARY_MAX_LOOKBACK_DAYS days
    (`since` narrows it further), from the default cache for TRADING_TCA_SUMMARY_CACHE_SECONDS.

    A request costs at most one bounded aggregation (three queries over the window) and nothing
    while the cached answer lives; `summary_as_of` says when it was computed, so a reader knows
    it can lag new TCA rows by up to `summary_max_age_seconds`."""
    ttl = settings.TRADING_TCA_SUMMARY_CACHE_SECONDS
    params = f"{(symbol or '').upper()}|{strategy_id or ''}|{since.isoformat() if since else ''}"
    key = "trading:tca-summary:" + hashlib.sha256(params.encode("utf-8")).hexdigest()
    cached: dict[str, Any] | None = cache.get(key)
    if cached is not None:
        return cached
    now = timezone.now()
    floor = now - timedelta(days=settings.TRADING_TCA_SUMMARY_MAX_LOOKBACK_DAYS)
    window_start = max(since, floor) if since else floor
    rows = tca_rows(symbol=symbol, strategy_id=strategy_id, since=window_start)
    body = {
        **tca_summary(rows),
        "summary_as_of": now,
        "summary_since": window_start,
        "summary_max_age_seconds": ttl,
    }
    cache.set(key, body, ttl)
    return body


def _ratio(loss: Decimal | None, base: Decimal | None) -> str | None:
    if loss is None or base is None or base <= 0:
        return None
    return f"{loss / base:.6f}"


def _lane_equity(state: LaneState | None) -> dict[str, Any]:
    """The lane's equity marks and the loss fractions the emergency stop compares to its limits."""
    equity = state.last_equity if state else None
    hwm = state.equity_high_water_mark if state else None
    start = state.session_start_equity if state else None
    return {
        "last_equity": equity,
        "high_water_mark": hwm,
        "drawdown": _ratio(hwm - equity if hwm is not None and equity is not None else None, hwm),
        "session_day": state.session_day if state else None,
        "session_start_equity": start,
        "daily_loss": _ratio(
            start - equity if start is not None and equity is not None else None, start
        ),
    }


def _status_tca() -> dict[str, Any]:
    """The TCA summary of `/trading/tca` (cached; `as_of` says when it was computed)."""
    body = tca_summary_cached()
    return {**body["summary"], "as_of": body["summary_as_of"], "since": body["summary_since"]}


def _lane_row(lane: LaneConfig, state: LaneState | None) -> dict[str, Any]:
    return {
        "label": lane.label,
        "mode": lane.mode,
        "broker": lane.broker,
        "enabled": lane.enabled,
        "last_cycle_started_at": state.last_cycle_started_at if state else None,
        "last_cycle_finished_at": state.last_cycle_finished_at if state else None,
        "last_cycle_status": state.last_cycle_status if state else "",
        "last_cycle_summary": state.last_cycle_summary if state else {},
        "last_error": state.last_error if state else "",
        "last_reconcile_at": state.last_reconcile_at if state else None,
        "signal_continuity": {
            "last_signal_ts": state.last_signal_ts if state else None,
            "signal_lag_seconds": state.signal_lag_seconds if state else None,
            "no_signal_reason": state.no_signal_reason if state else "",
            "no_signal_streak": state.no_signal_streak if state else 0,
            "market_open": state.market_open if state else None,
            "universe_status": state.universe_status if state else "",
        },
        "equity": _lane_equity(state),
    }


def _rollback(flags: dict[str, Any], safety: SafetyState | None) -> dict[str, Any]:
    return {
        "emergency_stop_enabled": flags["TRADING_EMERGENCY_STOP_ENABLED"]["value"],
        "emergency_stop_active": bool(safety and safety.emergency_stop_active),
        "emergency_stop_reasons": safety.emergency_stop_reasons if safety else [],
        "emergency_stop_triggered_at": safety.emergency_stop_triggered_at if safety else None,
        "clean_cycles": safety.emergency_stop_clean_cycles if safety else 0,
    }


def trading_status() -> dict[str, Any]:
    """`/trading/status`'s body, cached in this process for TRADING_STATUS_CACHE_SECONDS
    (`trading.status_cache`: a safety latch's change or a flag's new value computes it afresh);
    `as_of` says when it was computed. Shared between requests: do not change it."""
    flags = flags_snapshot()
    key = tuple((f.setting, f.value, f.source) for f in flags)
    return status_cached(key=key, compute=lambda: _trading_status_build(flags))


def _trading_status_build(resolutions: list[FlagResolution]) -> dict[str, Any]:
    now = timezone.now()
    safety = SafetyState.objects.filter(scope="global").first()
    kill = kill_switch_of(safety)
    states = list(LaneState.objects.all())
    by_label = {s.account_label: s for s in states}
    configs = lane_configs()
    flags = {f.setting: {"value": f.value, "source": f.source} for f in resolutions}
    trading_enabled = bool(flags["TRADING_ENABLED"]["value"])
    rollup = lanes_rollup(
        states=states,
        enabled_labels={lane.label for lane in configs if lane.enabled},
        trading_enabled=trading_enabled,
        now=now,
    )
    rollback = _rollback(flags, safety)
    body = {
        "as_of": now,
        "enabled": flags["TRADING_ENABLED"]["value"],
        **rollup,
        "mode": settings.TRADING_MODE,
        "autonomy_enabled": flags["TRADING_AUTONOMY_ENABLED"]["value"],
        "kill_switch": {"active": kill.active, "source": kill.source, "reason": kill.reason},
        "rollback": rollback,
        "lanes": [_lane_row(lane, by_label.get(lane.label)) for lane in configs],
        "feature_flags": flags,
        "llm": llm_status(),
        "llm_evaluation": llm_evaluation(),
        "tca": _status_tca(),
        **status_sections(),
        "decisions_24h": dict(
            TradeDecision.objects.filter(created_at__gte=now - timedelta(hours=24))
            .values_list("status")
            .annotate(n=Count("pk"))
            .order_by()
        ),
        "metrics": trading_counter_totals(),
    }
    body["control_plane_contract"] = control_plane_contract(
        as_of=now,
        trading_enabled=trading_enabled,
        kill_switch_engaged=kill.active,
        emergency_stop_active=rollback["emergency_stop_active"],
        lanes=[(lane, by_label.get(lane.label)) for lane in configs],
        rollup=rollup,
    )
    return body


def trading_health() -> dict[str, Any]:
    """Dependencies of the trading loop; `ok` only when all are healthy."""
    from trading.lanes import broker_for_lane

    deps: dict[str, Any] = {}
    try:
        LaneState.objects.exists()
        deps["postgres" if settings.DATABASE_IS_POSTGRES else "database"] = {"ok": True}
    except Exception as exc:  # noqa: BLE001 - any driver error is "down"
        deps["postgres" if settings.DATABASE_IS_POSTGRES else "database"] = {
            "ok": False,
            "error": type(exc).__name__,
        }
        return {"status": "degraded", "dependencies": deps}
    for lane in lane_configs():
        if not lane.enabled:
            continue
        try:
            broker_for_lane(lane).get_account()
            deps[f"broker:{lane.label}"] = {"ok": True, "broker": lane.broker}
        except Exception as exc:  # noqa: BLE001
            deps[f"broker:{lane.label}"] = {
                "ok": False,
                "broker": lane.broker,
                "error": type(exc).__name__,
            }
    deps["worker_heartbeat"] = heartbeats_health(kind=HeartbeatKind.CELERY_WORKER, key="workers")
    # the original's `scheduler`: here Celery beat, which sends every periodic task
    scheduler = heartbeats_health(kind=HeartbeatKind.CELERY_BEAT, key="beats")
    if settings.TRADING_SIGNAL_SOURCE == "clickhouse":
        deps["clickhouse"] = clickhouse_health()
    lanes = LaneState.objects.all()
    deps["signal_source"] = {
        "ok": not any(s.last_cycle_status == "error" for s in lanes),
        "source": settings.TRADING_SIGNAL_SOURCE,
        "lanes": {
            s.account_label: {
                "status": s.last_cycle_status,
                "lag_seconds": s.signal_lag_seconds,
                "error": s.last_error,
            }
            for s in lanes
        },
    }
    for lane in lane_configs():
        if lane.enabled and trade_stream_watched(lane=lane):
            # the broker stream as the trade cycle judges it (unhealthy refuses new risk)
            stream = trade_stream_health(lane=lane, now=timezone.now())
            deps[f"trade_updates_stream:{lane.label}"] = {
                "ok": stream.healthy,
                "state": stream.state,
                "gap_seconds": round(stream.gap_seconds, 1),
            }
    if flag_enabled("TRADING_ORDER_FEED_ENABLED"):
        # the truth is Kafka's (the consumer group's assignments and committed offsets), not a
        # consumer's own heartbeat: `reasons` names each rule that failed
        feed = order_feed_status()
        health = feed["health"] or {
            "ok": False,
            "reasons": ["kafka_unreachable"],
            "error": "TRADING_ORDER_FEED_BOOTSTRAP_SERVERS is empty",
        }
        deps["order_feed"] = {
            **health,
            # this endpoint answers anyone (probes): Kafka's own error text, which can name
            # internal hosts, is kept for the authenticated /trading/status
            "error": (
                ("kafka probe failed" if health.get("error") else "")
                if feed["health"]
                else health["error"]
            ),
            "consumers": feed["consumers"],
            "unknown_orders_open": feed["unknown_orders_open"],
        }
    ok = scheduler["ok"] and all(dep.get("ok") for dep in deps.values())
    return {"status": "ok" if ok else "degraded", "scheduler": scheduler, "dependencies": deps}
