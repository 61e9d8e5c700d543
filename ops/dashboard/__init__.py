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

The package, by part (each submodule imports its siblings, never this package):

- `levels`: `Level`, `LEVELS`, the windows and limits, `worst`, `age_level`, `duration_text`,
  `age_text`;
- `tiles`: `Tile`, `LaneGlance`, `Glance`;
- `glance`: `glance` (the admin index's *At a glance*), with the mode and emergency-stop tiles;
- `lanes`, `heartbeats`, `order_feed`: the tiles of the lanes, of the processes' heartbeats and
  of the order feed and its partitions;
- `charts`: `DashboardData` and the selectors behind the dashboard page's charts.
"""

from __future__ import annotations

from ops.dashboard.charts import (
    DashboardData,
    MinuteCount,
    ReasonCount,
    StrategyDecisions,
    SymbolFills,
    dashboard_data,
    decisions_by_strategy,
    equity_by_lane,
    feed_window_start,
    fills_by_symbol,
    order_events_per_minute,
    pnl_by_lane,
    rejects_by_reason,
)
from ops.dashboard.glance import (
    glance,
)
from ops.dashboard.levels import (
    CHART_LIMIT,
    CHART_WINDOW,
    CYCLE_BAD,
    CYCLE_OK,
    FEED_WINDOW_MINUTES,
    HEARTBEAT_LOOKBACK,
    LEVELS,
    Level,
    age_level,
    age_text,
    duration_text,
    worst,
)
from ops.dashboard.tiles import (
    Glance,
    LaneGlance,
    Tile,
)

__all__ = [
    "CHART_LIMIT",
    "CHART_WINDOW",
    "CYCLE_BAD",
    "CYCLE_OK",
    "DashboardData",
    "FEED_WINDOW_MINUTES",
    "Glance",
    "HEARTBEAT_LOOKBACK",
    "LEVELS",
    "LaneGlance",
    "Level",
    "MinuteCount",
    "ReasonCount",
    "StrategyDecisions",
    "SymbolFills",
    "Tile",
    "age_level",
    "age_text",
    "dashboard_data",
    "decisions_by_strategy",
    "duration_text",
    "equity_by_lane",
    "feed_window_start",
    "fills_by_symbol",
    "glance",
    "order_events_per_minute",
    "pnl_by_lane",
    "rejects_by_reason",
    "worst",
]
