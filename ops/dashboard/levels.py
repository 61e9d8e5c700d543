"""The dashboards' levels (ok, warn, bad), their windows and limits, and how an age or a
duration is graded and written."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

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


def age_seconds(now: datetime, at: datetime | None) -> float | None:
    return None if at is None else max((now - at).total_seconds(), 0.0)
