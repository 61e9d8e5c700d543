"""The scheduled lane: every `TRADING_AUTONOMY_INTERVAL_SECONDS`, over the signals of the last
`TRADING_AUTONOMY_SIGNAL_LOOKBACK_MINUTES` from the configured signal source.

Flags are read fresh on every tick (`TRADING_AUTONOMY_ENABLED` off: nothing runs). The target is
`paper`, or `live` when `TRADING_AUTONOMY_ALLOW_LIVE_PROMOTION` is on and an approval token is
configured (gate 5 still decides, and a promotion still needs a human). A window without signals
is recorded as a `skipped` run. One tick at a time: a database advisory lock (Postgres) or the
cache lock (SQLite) keeps two workers from running the same window twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache

from autonomy.engine.artifacts import canonical
from autonomy.lane_inputs import lane_run_id
from autonomy.policy import load_gate_policy
from autonomy.selectors import scheduled_failure_streak
from autonomy.services.research_lane import LaneRun, lane_execute, lane_skip, policy_inputs
from torghut_site.auth import constant_time_equals
from torghut_site.flags import flag_enabled
from trading.lanes import enabled_lane_labels
from trading.services.safety import emergency_stop_latch
from trading.services.signals import cursor_get, signal_source_for
from trading.signals.base import CursorSignalSource, SignalSourceError
from trading.signals.types import SignalCursor, SignalEnvelope

MAX_WINDOW_ROWS = 200_000
PAGE = 5_000
LOCK_KEY = "autonomy:lane-tick"
AUTONOMY_FAILURE_STREAK = "autonomy_failure_streak_exceeded"


def approval_token_matches(token: str | None) -> bool:
    """Gate 5's approval token: a configured TRADING_AUTONOMY_APPROVAL_TOKEN, compared in
    constant time. No configured token: nothing matches."""
    expected = settings.TRADING_AUTONOMY_APPROVAL_TOKEN
    if not expected or not token:
        return False
    return constant_time_equals(expected, token)


def signal_row(s: SignalEnvelope) -> dict[str, Any]:
    """An envelope row the lane's parser reads back into the same signal."""
    payload: dict[str, Any] = dict(s.features)
    if s.price is not None:
        payload["price"] = str(s.price)
    return {
        "event_ts": s.event_ts.isoformat(),
        "ingest_ts": s.ingest_ts.isoformat() if s.ingest_ts else None,
        "symbol": s.symbol,
        "seq": s.seq,
        "timeframe": s.timeframe,
        "source": s.source,
        "feature_schema_version": s.feature_schema_version,
        "payload": payload,
    }


def window_signals(now: datetime, minutes: int) -> list[SignalEnvelope]:
    labels = enabled_lane_labels()
    if not labels:
        return []
    source = signal_source_for(cursor=cursor_get(account_label=labels[0], now=now))
    if not isinstance(source, CursorSignalSource):
        raise SignalSourceError(f"{type(source).__name__} cannot read a time window")
    start = SignalCursor(event_ts=now - timedelta(minutes=minutes))
    out: list[SignalEnvelope] = []
    while len(out) < MAX_WINDOW_ROWS:
        page = source.read_after(start, limit=PAGE, now=now)
        out.extend(s for s in page.signals if s.event_ts <= now)
        if page.last_key is None or len(page.signals) < PAGE or page.last_key.event_ts > now:
            break
        start = page.last_key
    return out


@dataclass(frozen=True)
class TickResult:
    ran: bool
    reason: str
    lane_run: LaneRun | None = None


def lane_tick(*, now: datetime) -> TickResult:
    if not flag_enabled("TRADING_AUTONOMY_ENABLED"):
        return TickResult(False, "autonomy_disabled")
    if not cache.add(LOCK_KEY, "1", timeout=settings.TRADING_AUTONOMY_INTERVAL_SECONDS):
        return TickResult(False, "already_running")
    try:
        return _tick(now)
    except Exception:
        failure_streak_check()
        raise
    finally:
        cache.delete(LOCK_KEY)


def failure_streak_check() -> bool:
    """After a tick that broke: latch the trading emergency stop once the ledger shows
    TRADING_ROLLBACK_AUTONOMY_FAILURE_STREAK_LIMIT failed scheduled runs in a row (a passed run
    ends the streak; it never clears a latch). True when this call latched it."""
    limit = settings.TRADING_ROLLBACK_AUTONOMY_FAILURE_STREAK_LIMIT
    streak = scheduled_failure_streak(limit=limit)
    if len(streak) < limit:
        return False
    verdict = emergency_stop_latch(
        reasons=[AUTONOMY_FAILURE_STREAK],
        account_label="",
        snapshot={"source": "autonomy", "failure_streak": len(streak), "failed_runs": streak},
    )
    return verdict.triggered


def _tick(now: datetime) -> TickResult:
    policy, policy_bytes = load_gate_policy(settings.TRADING_AUTONOMY_GATE_POLICY_PATH)
    strategy_bytes = Path(settings.TRADING_AUTONOMY_STRATEGY_CONFIG_PATH).read_bytes()
    signals = window_signals(now, settings.TRADING_AUTONOMY_SIGNAL_LOOKBACK_MINUTES)
    rows = [signal_row(s) for s in signals]
    # the window's identity: its rows, or (no rows) its bounds, so empty windows differ too
    identity: Any = rows or {
        "empty_window_end": now.replace(microsecond=0).isoformat(),
        "minutes": settings.TRADING_AUTONOMY_SIGNAL_LOOKBACK_MINUTES,
    }
    signals_bytes = json.dumps(canonical(identity), sort_keys=True).encode()
    token = settings.TRADING_AUTONOMY_APPROVAL_TOKEN
    live = flag_enabled("TRADING_AUTONOMY_ALLOW_LIVE_PROMOTION") and bool(token)
    inputs = policy_inputs(
        signal_rows=rows,
        signals_bytes=signals_bytes,
        strategy_config_bytes=strategy_bytes,
        policy=policy,
        policy_bytes=policy_bytes,
        target="live" if live else "paper",
        approval_token_ok=live and approval_token_matches(token),
        signal_source=settings.TRADING_SIGNAL_SOURCE,
    )
    out_dir = Path(settings.TRADING_ARTIFACT_DIR) / "runs" / lane_run_id(inputs)
    if not rows:
        result = lane_skip(inputs=inputs, output_dir=out_dir, trigger="schedule")
        return TickResult(True, "skipped_no_signals", result)
    result = lane_execute(inputs=inputs, output_dir=out_dir, trigger="schedule")
    return TickResult(True, result.outcome.status, result)
