"""``glance``: everything the admin index shows at a glance (its queries are here), with the
trading-mode and emergency-stop tiles."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from ops.dashboard.heartbeats import heartbeat_kinds_expected, heartbeat_tiles
from ops.dashboard.lanes import lane_glance, lane_glance_disabled
from ops.dashboard.levels import HEARTBEAT_LOOKBACK
from ops.dashboard.order_feed import order_feed_tile, partition_tiles
from ops.dashboard.tiles import Glance, Tile
from orderfeed.selectors import order_feed_probed_health
from torghut_site.flags import flag_enabled
from torghut_site.models import ProcessHeartbeat
from trading.lanes import lane_configs
from trading.models import LaneState, SafetyState
from trading.selectors.safety import kill_switch_state


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
    partitions = partition_tiles(feed)
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
            lane_glance(
                lane.label,
                lane.mode,
                lane.broker,
                states.get(lane.label),
                trading_on=trading_on,
                now=now,
            )
            if lane.enabled
            else lane_glance_disabled(lane.label, lane.mode, lane.broker)
            for lane in lanes
        ],
        order_feed=order_feed_tile(feed_on, feed, beats, partitions, now=now),
        partitions=partitions,
        heartbeats=heartbeat_tiles(
            beats,
            expected=heartbeat_kinds_expected(
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
