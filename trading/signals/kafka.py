"""The `kafka` signal source: TA signal rows that `run_signal_consumer` stored from the topic,
read in stream order (event_ts, symbol, seq) after the lane's cursor.

Rows are read from the database rather than from Kafka inside the cycle, so every worker and
every lane shares one consumer group's work, a cycle never waits for a group join, and the
cursor rules (lookback, empty-batch advance, no-signal reasons) are exactly those of the other
sources. A row that arrives with an event time before a lane's cursor is not replayed to it
(the same as the ClickHouse source).
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Max, Q

from trading.models import TaSignal
from trading.signals.base import CursorSignalSource
from trading.signals.types import ParsedRows, SignalCursor, parse_rows

SOURCE_NAME = "kafka"


class KafkaSignalSource(CursorSignalSource):
    def latest_event_ts(self, now: datetime) -> datetime | None:
        latest: datetime | None = TaSignal.objects.filter(event_ts__lte=now).aggregate(
            latest=Max("event_ts")
        )["latest"]
        return latest

    def read_after(self, start: SignalCursor, *, limit: int, now: datetime) -> ParsedRows:
        after = (
            Q(event_ts__gt=start.event_ts)
            | Q(event_ts=start.event_ts, symbol__gt=start.symbol)
            | Q(event_ts=start.event_ts, symbol=start.symbol, seq__gt=start.seq)
        )
        rows = (
            TaSignal.objects.filter(after, event_ts__lte=now)
            .order_by("event_ts", "symbol", "seq")
            .values_list("row", flat=True)[:limit]
        )
        return parse_rows(list(rows), source=SOURCE_NAME)
