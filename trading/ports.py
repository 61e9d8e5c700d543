"""Ports: what the order feed lends trading, registered from `orderfeed`'s AppConfig.ready().

Trading sits below `orderfeed` and never imports it: at start-up the order feed registers here
the two things trading needs of it, the flush of the simulated broker's trade updates onto the
feed (a trade cycle's and a reconciliation's first step) and the feed's status (for
`/trading/health`; `/trading/status` gets the same as its `order_feed` section, below).
Calling a port that nobody registered raises `PortNotRegistered`: `orderfeed` is missing from
INSTALLED_APPS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


class SimUpdatesFlush(Protocol):
    def __call__(self, *, account_label: str) -> int: ...


class FeedStatus(Protocol):
    def __call__(self) -> dict[str, Any]: ...


class PortNotRegistered(RuntimeError):
    """No installed app provides this port."""


@dataclass
class _OrderFeedPorts:
    sim_updates_flush: SimUpdatesFlush | None = None
    status: FeedStatus | None = None


_order_feed = _OrderFeedPorts()


def order_feed_register(*, sim_updates_flush: SimUpdatesFlush, status: FeedStatus) -> None:
    """Called once by the order feed's AppConfig.ready()."""
    _order_feed.sim_updates_flush = sim_updates_flush
    _order_feed.status = status


def sim_trade_updates_flush(*, account_label: str) -> int:
    """Move the lane's pending simulated trade updates onto the order feed; how many moved."""
    if _order_feed.sim_updates_flush is None:
        raise PortNotRegistered("order feed: sim_updates_flush (is `orderfeed` installed?)")
    return _order_feed.sim_updates_flush(account_label=account_label)


def order_feed_status() -> dict[str, Any]:
    """The order feed at a glance, as the order feed reports it."""
    if _order_feed.status is None:
        raise PortNotRegistered("order feed: status (is `orderfeed` installed?)")
    return _order_feed.status()


# -- /trading/status sections lent by the apps above trading ---------------------------------
# The order feed registers its `order_feed` block, the research loop (`autonomy`) its `autonomy`
# and `evidence_continuity` blocks, each with its closed schema, from their AppConfig.ready(), so
# `/trading/status` carries them without trading importing either.
# An app that is not installed lends nothing, and its block is absent (never a placeholder).

StatusSection = Callable[[], dict[str, Any] | None]
_status_sections: dict[str, StatusSection] = {}
# the response schema of each block (a DRF serializer class, read by the status serializer's
# `get_fields` when the OpenAPI schema is generated)
_status_section_schemas: dict[str, Any] = {}


def status_section_register(*, name: str, section: StatusSection, schema: Any) -> None:
    """Called by an upper app's AppConfig.ready(): `name` becomes a top-level status field whose
    answer `schema` (a serializer class; the block may be null) describes."""
    _status_sections[name] = section
    _status_section_schemas[name] = schema


def status_section_schemas() -> dict[str, Any]:
    """Every registered block's serializer class, by name, in registration order."""
    return dict(_status_section_schemas)


def status_sections() -> dict[str, dict[str, Any] | None]:
    """Every registered block, by name, in registration order."""
    return {name: section() for name, section in _status_sections.items()}
