"""The signal-source port and the cursor rules every source shares (docs/compatibility.md#signals).

A source reads rows strictly after a cursor in (event_ts, symbol, seq) order. `CursorSignalSource`
implements the rules once; a concrete source supplies `latest_event_ts(now)` (newest row it can
see) and `read_after(start, limit, now)` (up to `limit` rows with key > start, in order).

Rules, with lookback L (TRADING_SIGNAL_LOOKBACK_MINUTES, 15) and advance A
(TRADING_SIGNAL_EMPTY_BATCH_ADVANCE_SECONDS, 60):
- no cursor yet: start at now - L;
- stale cursor (older than now - L) is fast-forwarded to now - L, unless it already sits at or after
  the newest row (then nothing newer exists and its position is kept);
- rows read: `cursor_after` is the position of the last row read (invalid rows included, so a bad
  row is never re-read), no reason;
- nothing read, by the first matching case:
  - no row at all ⇒ `no_signals_in_window`;
  - cursor > latest + L ⇒ `cursor_ahead_of_stream`, cursor rewound to the stream tail (just after
    the rows at `latest`, so nothing already delivered is delivered again);
  - cursor ≥ latest ⇒ `cursor_tail_stable`, cursor kept;
  - otherwise ⇒ `no_signals_in_window`;
  then a `no_signals_in_window` whose cursor is older than now - A moves the cursor to now - A and
  reports `empty_batch_advanced` (A = 0 disables this).
- lag = now - latest (None when there is no row).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from trading.signals.types import ParsedRows, SignalBatch, SignalCursor

NO_SIGNALS_IN_WINDOW = "no_signals_in_window"
CURSOR_TAIL_STABLE = "cursor_tail_stable"
CURSOR_AHEAD_OF_STREAM = "cursor_ahead_of_stream"
EMPTY_BATCH_ADVANCED = "empty_batch_advanced"
CLICKHOUSE_URL_MISSING = "clickhouse_url_missing"

NO_SIGNAL_REASONS = (
    NO_SIGNALS_IN_WINDOW,
    CURSOR_TAIL_STABLE,
    CURSOR_AHEAD_OF_STREAM,
    EMPTY_BATCH_ADVANCED,
    CLICKHOUSE_URL_MISSING,
)

DEFAULT_LOOKBACK_MINUTES = 15
DEFAULT_EMPTY_BATCH_ADVANCE_SECONDS = 60
DEFAULT_BATCH_LIMIT = 500


class SignalSourceError(Exception):
    """The source could not be read (network, server error, bad configuration)."""


@runtime_checkable
class SignalSource(Protocol):
    def fetch(self, cursor: SignalCursor | None, *, limit: int, now: datetime) -> SignalBatch: ...


@dataclass(frozen=True)
class CursorRules:
    lookback: timedelta = timedelta(minutes=DEFAULT_LOOKBACK_MINUTES)
    empty_batch_advance: timedelta = timedelta(seconds=DEFAULT_EMPTY_BATCH_ADVANCE_SECONDS)

    @classmethod
    def from_values(
        cls,
        *,
        lookback_minutes: float = DEFAULT_LOOKBACK_MINUTES,
        empty_batch_advance_seconds: float = DEFAULT_EMPTY_BATCH_ADVANCE_SECONDS,
    ) -> CursorRules:
        if lookback_minutes <= 0:
            raise ValueError("lookback_minutes must be > 0")
        if empty_batch_advance_seconds < 0:
            raise ValueError("empty_batch_advance_seconds must be >= 0")
        return cls(
            lookback=timedelta(minutes=lookback_minutes),
            empty_batch_advance=timedelta(seconds=empty_batch_advance_seconds),
        )

    def start_cursor(
        self, cursor: SignalCursor | None, *, now: datetime, latest: datetime | None
    ) -> SignalCursor:
        floor = SignalCursor.at(now - self.lookback)
        if cursor is None:
            return floor
        if cursor.event_ts < floor.event_ts and not (
            latest is not None and cursor.event_ts >= latest
        ):
            return floor
        return cursor

    def empty_outcome(
        self, cursor: SignalCursor, *, now: datetime, latest: datetime | None
    ) -> tuple[str, SignalCursor]:
        """(reason, cursor_after) when nothing was read after `cursor`."""
        if latest is None:
            reason = NO_SIGNALS_IN_WINDOW
        elif cursor.event_ts > latest + self.lookback:
            return CURSOR_AHEAD_OF_STREAM, SignalCursor.after_time(latest)
        elif cursor.event_ts >= latest:
            return CURSOR_TAIL_STABLE, cursor
        else:
            reason = NO_SIGNALS_IN_WINDOW
        if self.empty_batch_advance > timedelta(0):
            advance_to = now - self.empty_batch_advance
            if cursor.event_ts < advance_to:
                return EMPTY_BATCH_ADVANCED, SignalCursor.at(advance_to)
        return reason, cursor


def lag_seconds(now: datetime, latest: datetime | None) -> float | None:
    if latest is None:
        return None
    return max(0.0, (now - latest).total_seconds())


def require_aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


class CursorSignalSource(ABC):
    """Template for sources whose rows are ordered by (event_ts, symbol, seq)."""

    def __init__(self, *, rules: CursorRules | None = None) -> None:
        self.rules = rules or CursorRules()

    @abstractmethod
    def latest_event_ts(self, now: datetime) -> datetime | None:
        """The newest event time visible at `now` (None when there is none)."""

    @abstractmethod
    def read_after(self, start: SignalCursor, *, limit: int, now: datetime) -> ParsedRows:
        """Up to `limit` rows with key > start, in stream order, normalized."""

    def fetch(
        self, cursor: SignalCursor | None, *, limit: int = DEFAULT_BATCH_LIMIT, now: datetime
    ) -> SignalBatch:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        now = require_aware(now)
        latest = self.latest_event_ts(now)
        start = self.rules.start_cursor(cursor, now=now, latest=latest)
        page = self.read_after(start, limit=limit, now=now)
        if page.last_key is not None:
            newest = page.last_key.event_ts
            if latest is None or newest > latest:
                latest = newest
            return SignalBatch(
                signals=tuple(page.signals),
                cursor_after=page.last_key,
                no_signal_reason=None if page.signals else NO_SIGNALS_IN_WINDOW,
                latest_event_ts=latest,
                invalid_rows=page.invalid_rows,
                lag_seconds=lag_seconds(now, latest),
            )
        reason, after = self.rules.empty_outcome(start, now=now, latest=latest)
        return SignalBatch(
            signals=(),
            cursor_after=after,
            no_signal_reason=reason,
            latest_event_ts=latest,
            invalid_rows=page.invalid_rows,
            lag_seconds=lag_seconds(now, latest),
        )
