"""The configured signal source of a lane and its persisted cursor."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from django.conf import settings

from trading.models import TradeCursor
from trading.signals.base import SignalSource
from trading.signals.types import SignalCursor


def cursor_get(*, account_label: str, now: datetime) -> TradeCursor:
    cursor, created = TradeCursor.objects.get_or_create(
        source=settings.TRADING_SIGNAL_SOURCE, account_label=account_label
    )
    if settings.TRADING_SIGNAL_SOURCE == "replay" and "anchor" not in cursor.state:
        # the replay plays the bundled file as if it started now; the anchor survives restarts
        cursor.state = {**cursor.state, "anchor": now.isoformat()}
        cursor.save(update_fields=["state", "updated_at"])
    return cursor


def cursor_value(cursor: TradeCursor) -> SignalCursor | None:
    if cursor.cursor_at is None:
        return None
    return SignalCursor(cursor.cursor_at, cursor.cursor_symbol, cursor.cursor_seq)


def cursor_store(*, cursor: TradeCursor, value: SignalCursor | None) -> None:
    if value is None:
        return
    TradeCursor.objects.filter(pk=cursor.pk).update(
        cursor_at=value.event_ts, cursor_symbol=value.symbol, cursor_seq=value.seq
    )


def signal_source_for(*, cursor: TradeCursor) -> SignalSource:
    source = settings.TRADING_SIGNAL_SOURCE
    if source == "replay":
        from trading.signals.replay import ReplaySignalSource

        return ReplaySignalSource(
            Path(settings.TRADING_SIGNAL_REPLAY_PATH),
            anchor=datetime.fromisoformat(cursor.state["anchor"]),
            speed=settings.TRADING_SIGNAL_REPLAY_SPEED,
            loop=settings.TRADING_SIGNAL_REPLAY_LOOP,
        )
    if source == "clickhouse":
        from trading.signals.clickhouse import ClickHouseSignalSource

        return ClickHouseSignalSource.from_settings()
    if source == "alpaca":
        from trading.signals.alpaca import AlpacaBarsSignalSource

        return AlpacaBarsSignalSource.from_settings()
    if source == "kafka":
        from trading.signals.kafka import KafkaSignalSource

        return KafkaSignalSource()
    raise NotImplementedError(f"signal source {source!r} is not available in this build")
