"""The processes' heartbeat tiles: which kinds are expected, and each kind's live, dead or stopped
state."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings

from ops.dashboard.levels import Level, age_level, age_seconds, age_text, worst
from ops.dashboard.tiles import Tile
from torghut_site.models import HeartbeatKind, ProcessHeartbeat
from torghut_site.selectors import heartbeat_state


def _interval(kind: str) -> float:
    if kind in (HeartbeatKind.CELERY_WORKER, HeartbeatKind.CELERY_BEAT):
        return float(settings.CELERY_WORKER_HEARTBEAT_SECONDS)
    return float(settings.KAFKA_CONSUMER_HEARTBEAT_SECONDS)


def heartbeat_kinds_expected(*, feed_on: bool, alpaca_lane: bool) -> list[str]:
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


def heartbeat_live(beat: ProcessHeartbeat, now: datetime) -> bool:
    return _state(beat, now) not in ("dead", "stopped")


def heartbeat_tiles(
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
        live = [b for b in rows if heartbeat_live(b, now)]
        dead = [b for b in rows if _state(b, now) == "dead"]
        freshest = age_seconds(now, rows[0].last_seen_at) if rows else None
        level: Level
        if live:
            level, value = "ok", f"{len(live)} live · {age_text(freshest)}"
        elif dead:
            age = age_seconds(now, dead[0].last_seen_at)
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
