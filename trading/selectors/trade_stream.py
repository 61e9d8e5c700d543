"""Reads of a lane's broker `trade_updates` stream health (`TradeStreamState`, written by the
order feed's bridge) for the trade cycle, the gap-fill task and the bridge itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Min

from torghut_site.flags import flag_enabled
from trading.brokers.base import FINAL_ORDER_STATUSES
from trading.gates import StreamHealth, stream_health_evaluate
from trading.lanes import LaneConfig
from trading.models import Execution, LaneState, TradeStreamState


@dataclass(frozen=True)
class StreamWatch:
    """What the health of one lane's stream is judged on, read in three queries."""

    health: StreamHealth
    oldest_open_submitted_at: datetime | None  # of the lane's open (non-final) executions
    last_event_at: datetime | None  # the last trade update the stream delivered


def trade_stream_watched(*, lane: LaneConfig) -> bool:
    """Only Alpaca lanes have a stream, and it matters only while the order feed is on."""
    return lane.broker == "alpaca" and flag_enabled("TRADING_ORDER_FEED_ENABLED")


def _oldest_open_submitted_at(account_label: str) -> datetime | None:
    oldest: datetime | None = (
        Execution.objects.filter(account_label=account_label)
        .exclude(status__in=FINAL_ORDER_STATUSES)
        .aggregate(oldest=Min("submitted_at"))["oldest"]
    )
    return oldest


def trade_stream_watch(*, lane: LaneConfig, now: datetime) -> StreamWatch:
    """The lane's stream health now. A lane the bridge never wrote a row for is disconnected."""
    if not trade_stream_watched(lane=lane):
        return StreamWatch(StreamHealth(), None, None)
    oldest = _oldest_open_submitted_at(lane.label)
    market_open = (
        LaneState.objects.filter(account_label=lane.label)
        .values_list("market_open", flat=True)
        .first()
    )
    state = TradeStreamState.objects.filter(account_label=lane.label).first()
    health = stream_health_evaluate(
        open_orders=oldest is not None,
        market_open=market_open,
        connected=state is not None and state.connected,
        last_message_at=state.last_message_at if state is not None else None,
        since=oldest,
        now=now,
        max_silence_seconds=settings.TRADING_TRADE_UPDATES_MAX_SILENCE_SECONDS,
    )
    return StreamWatch(health, oldest, state.last_event_at if state is not None else None)


def trade_stream_health(*, lane: LaneConfig, now: datetime) -> StreamHealth:
    return trade_stream_watch(lane=lane, now=now).health


def trade_stream_watch_needed(*, account_label: str) -> bool:
    """For the bridge: a silent stream is worth reopening only while the lane has open orders
    and the market is open (what `stream_health_evaluate` judges on)."""
    market_open = (
        LaneState.objects.filter(account_label=account_label)
        .values_list("market_open", flat=True)
        .first()
    )
    if market_open is not True:
        return False
    return (
        Execution.objects.filter(account_label=account_label)
        .exclude(status__in=FINAL_ORDER_STATUSES)
        .exists()
    )
