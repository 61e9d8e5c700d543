"""US equity market session: the calendar fallback used when the broker clock cannot be read."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
SESSION_OPEN = time(9, 30)
SESSION_CLOSE = time(16, 0)

# no-signal reasons that are expected while the market is closed (not actionable then)
MARKET_CLOSED_EXPECTED_REASONS = frozenset(
    {"no_signals_in_window", "cursor_tail_stable", "empty_batch_advanced"}
)


def market_is_open(now: datetime) -> bool:
    """Mon–Fri 09:30 (inclusive) to 16:00 (exclusive) America/New_York; no holiday calendar."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    local = now.astimezone(NEW_YORK)
    if local.weekday() >= 5:
        return False
    return SESSION_OPEN <= local.time() < SESSION_CLOSE


def expected_while_closed(
    reason: str | None, *, expected: frozenset[str] | set[str] | None = None
) -> bool:
    """True for the no-signal reasons that a closed market explains."""
    if not reason:
        return False
    return reason in (MARKET_CLOSED_EXPECTED_REASONS if expected is None else expected)


def session_key(ts: datetime) -> int:
    """The New York trading date of `ts` as a proleptic ordinal (the VWAP session key)."""
    return ts.astimezone(NEW_YORK).date().toordinal()
