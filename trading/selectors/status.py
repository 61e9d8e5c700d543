"""The original's top-level `/trading/status` fields and its database gauges on `/metrics`,
computed from the lanes' state rows and the TCA table (docs/compatibility.md#endpoints,
docs/compatibility.md#metrics).

The original ran one scheduler loop; here every lane's cycle is its own Celery task, so each
top-level field is a roll-up over the lanes' `LaneState` rows, read once by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Avg, Count
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from torghut_site.selectors import heartbeat_list
from trading.lanes import LaneConfig
from trading.models import ExecutionTcaMetric, LaneState
from trading.signals.clickhouse import ClickHouseSignalSource

# a lane counts as running while its last cycle finished within this many TRADING_POLL_MS
# intervals (the heartbeat rows' expiry uses the same three intervals)
RUNNING_INTERVALS = 3


def signal_actionable(state: LaneState) -> bool:
    """A lane's no-signal condition an operator should act on: a reason repeated for
    TRADING_SIGNAL_NO_SIGNAL_STREAK_ALERT_THRESHOLD cycles, unless the market is closed and
    the reason is one TRADING_SIGNAL_MARKET_CLOSED_EXPECTED_REASONS expects then (the rule of
    the operators' dashboard, ops/dashboard/)."""
    reason = state.no_signal_reason
    if (
        not reason
        or state.no_signal_streak < settings.TRADING_SIGNAL_NO_SIGNAL_STREAK_ALERT_THRESHOLD
    ):
        return False
    expected = reason in settings.TRADING_SIGNAL_MARKET_CLOSED_EXPECTED_REASONS
    return not (state.market_open is False and expected)


def _newest(values: Iterable[datetime | None]) -> datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _signal_continuity(states: Sequence[LaneState]) -> dict[str, Any]:
    lags = [s.signal_lag_seconds for s in states if s.signal_lag_seconds is not None]
    return {
        "last_signal_ts": _newest(s.last_signal_ts for s in states),
        "max_signal_lag_seconds": max(lags) if lags else None,
        "no_signal_reasons": {
            s.account_label: s.no_signal_reason for s in states if s.no_signal_reason
        },
        "max_no_signal_streak": max((s.no_signal_streak for s in states), default=0),
        "market_open": _newest_market_open(states),
        "actionable_lanes": sorted(s.account_label for s in states if signal_actionable(s)),
    }


def _newest_market_open(states: Sequence[LaneState]) -> bool | None:
    """The market session as the lane that finished a cycle last saw it."""
    seen = [s for s in states if s.market_open is not None and s.last_cycle_finished_at]
    if not seen:
        return None
    return max(seen, key=lambda s: s.last_cycle_finished_at or timezone.now()).market_open


def lanes_rollup(
    *, states: Sequence[LaneState], enabled_labels: set[str], trading_enabled: bool, now: datetime
) -> dict[str, Any]:
    """`running`, `last_run`, `last_reconcile`, `last_error` and `signal_continuity` over the
    configured, enabled lanes' state rows."""
    lanes = [s for s in states if s.account_label in enabled_labels]
    window = timedelta(milliseconds=settings.TRADING_POLL_MS * RUNNING_INTERVALS)
    last_run = _newest(s.last_cycle_finished_at for s in lanes)
    failed = [s for s in lanes if s.last_error and s.last_cycle_finished_at]
    newest_failed = max(failed, key=lambda s: s.last_cycle_finished_at or now) if failed else None
    return {
        "running": bool(trading_enabled and last_run is not None and now - last_run <= window),
        "last_run": last_run,
        "last_reconcile": _newest(s.last_reconcile_at for s in lanes),
        "last_error": newest_failed.last_error if newest_failed else None,
        "signal_continuity": _signal_continuity(lanes),
    }


def heartbeats_health(*, kind: str, key: str) -> dict[str, Any]:
    """Healthy while one process of `kind` heartbeats; each row expires 3 heartbeat intervals
    after its last write, and past that reads `dead`."""
    rows = heartbeat_list(kind=kind)
    return {
        "ok": any(row.healthy for row in rows),
        key: [
            {"name": row.name, "state": row.state, "age_seconds": round(row.age_seconds, 1)}
            for row in rows
        ],
    }


def clickhouse_health() -> dict[str, Any]:
    """`SELECT 1` against TA_CLICKHOUSE_URL with the signal source's credentials and timeout,
    as the original's health check did. The error is named by kind only: this endpoint answers
    probes, and ClickHouse's own text can name internal hosts."""
    try:
        ClickHouseSignalSource.from_settings().query("SELECT 1 AS ok")
    except Exception as exc:  # noqa: BLE001 - any failure is "down"
        return {"ok": False, "error": type(exc).__name__, "status": getattr(exc, "status", None)}
    return {"ok": True}


def tca_gauges() -> Iterable[Metric]:
    """Scrape-time `torghut_trading_tca_*` over the TCA rows of the last
    TRADING_TCA_SUMMARY_MAX_LOOKBACK_DAYS days (one aggregate query on the computed_at index)."""
    since = timezone.now() - timedelta(days=settings.TRADING_TCA_SUMMARY_MAX_LOOKBACK_DAYS)
    families = {
        "order_count": "TCA rows (executions with fills) in the window.",
        "avg_slippage_bps": "Mean slippage against the arrival price, in basis points.",
        "avg_shortfall_notional": "Mean implementation shortfall, in account currency.",
    }
    try:
        agg = ExecutionTcaMetric.objects.filter(computed_at__gte=since).aggregate(
            order_count=Count("pk"),
            avg_slippage_bps=Avg("slippage_bps"),
            avg_shortfall_notional=Avg("shortfall_notional"),
        )
    except Exception:  # noqa: BLE001 - a scrape must not fail because the DB is down
        return []
    out: list[Metric] = []
    for name, doc in families.items():
        gauge = GaugeMetricFamily(f"torghut_trading_tca_{name}", doc)
        gauge.add_metric([], float(agg[name] or 0))
        out.append(gauge)
    return out


def signal_continuity_gauges() -> Iterable[Metric]:
    """Scrape-time signal-continuity series per lane, from the lanes' state rows."""
    market = GaugeMetricFamily(
        "torghut_trading_market_session_open",
        "1 while the lane's last cycle saw the market open (absent before its first cycle).",
        labels=["lane"],
    )
    actionable = GaugeMetricFamily(
        "torghut_trading_signal_continuity_actionable",
        "1 while the lane's no-signal condition is one to act on (signal_actionable).",
        labels=["lane"],
    )
    reason_streak = GaugeMetricFamily(
        "torghut_trading_no_signal_reason_streak",
        "Consecutive cycles of the lane without a signal for its current reason.",
        labels=["lane", "reason"],
    )
    try:
        rows = LaneState.objects.only(
            "account_label", "market_open", "no_signal_reason", "no_signal_streak"
        )
        for state in rows:
            lane = state.account_label
            if state.market_open is not None:
                market.add_metric([lane], 1.0 if state.market_open else 0.0)
            actionable.add_metric([lane], 1.0 if signal_actionable(state) else 0.0)
            if state.no_signal_reason:
                reason_streak.add_metric(
                    [lane, state.no_signal_reason], float(state.no_signal_streak)
                )
    except Exception:  # noqa: BLE001 - a scrape must not fail because the DB is down
        return []
    return [market, actionable, reason_streak]


CONTROL_PLANE_SCHEMA = "torghut.control-plane.v1"


def _lane_healthy(lane: LaneConfig, state: LaneState | None, now: datetime) -> bool:
    """Enabled, its last cycle finished within RUNNING_INTERVALS × TRADING_POLL_MS, not in
    error."""
    if not lane.enabled or state is None or state.last_cycle_finished_at is None:
        return False
    window = timedelta(milliseconds=settings.TRADING_POLL_MS * RUNNING_INTERVALS)
    return now - state.last_cycle_finished_at <= window and state.last_cycle_status != "error"


def signal_continuity_state(continuity: dict[str, Any]) -> str:
    """`actionable` while a lane's no-signal condition is one to act on (`signal_actionable`),
    `unknown` before any enabled lane has read a signal, else `ok`."""
    if continuity["actionable_lanes"]:
        return "actionable"
    if continuity["last_signal_ts"] is None:
        return "unknown"
    return "ok"


def control_plane_contract(
    *,
    as_of: datetime,
    trading_enabled: bool,
    kill_switch_engaged: bool,
    emergency_stop_active: bool,
    lanes: Sequence[tuple[LaneConfig, LaneState | None]],
    rollup: dict[str, Any],
) -> dict[str, Any]:
    """A stable, versioned subset of `/trading/status` a control plane can rely on (every field
    is documented in docs/compatibility.md#endpoints; a change of shape is a new version)."""
    return {
        "schema_version": CONTROL_PLANE_SCHEMA,
        "as_of": as_of,
        "mode": settings.TRADING_MODE,
        "trading_enabled": trading_enabled,
        "running": rollup["running"],
        "kill_switch_engaged": kill_switch_engaged,
        "emergency_stop_active": emergency_stop_active,
        "lanes": [
            {
                "label": lane.label,
                "enabled": lane.enabled,
                "live": lane.is_live,
                "last_cycle_at": state.last_cycle_finished_at if state else None,
                "healthy": _lane_healthy(lane, state, as_of),
            }
            for lane, state in lanes
        ],
        "signal_continuity": signal_continuity_state(rollup["signal_continuity"]),
    }
