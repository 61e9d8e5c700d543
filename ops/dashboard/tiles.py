"""What *At a glance* is made of: a tile, a lane's three tiles, and the whole glance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ops.dashboard.levels import Level, worst


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
