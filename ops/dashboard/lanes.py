"""A lane's tiles: its last cycle, its last reconcile and its signal lag (or no-signal streak)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils.text import slugify

from ops.dashboard.levels import (
    CYCLE_BAD,
    CYCLE_OK,
    Level,
    age_level,
    age_seconds,
    age_text,
    duration_text,
    worst,
)
from ops.dashboard.tiles import LaneGlance, Tile


def lane_glance_disabled(label: str, mode: str, broker: str) -> LaneGlance:
    key = f"lane-{slugify(label)}"
    return LaneGlance(
        label,
        mode,
        broker,
        Tile(f"{key}-cycle", "Last cycle", "lane disabled", "warn"),
        Tile(f"{key}-reconcile", "Last reconcile", "lane disabled", "warn"),
        Tile(f"{key}-signal-lag", "Signal lag", "lane disabled", "warn"),
    )


def lane_glance(
    label: str, mode: str, broker: str, state: Any, *, trading_on: bool, now: datetime
) -> LaneGlance:
    key = f"lane-{slugify(label)}"
    poll = settings.TRADING_POLL_MS / 1000
    never: Level = "bad" if trading_on else "warn"
    finished = age_seconds(now, state.last_cycle_finished_at) if state else None
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
    reconciled = age_seconds(now, state.last_reconcile_at) if state else None
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
