"""The nightly live-versus-replay check (issue 21, item 7): for one New York session date, per
account lane and strategy, the day's recorded signals go through the backtester with the
strategy versions of the day and its decisions are compared with the live `TradeDecision`s
(`autonomy.replay` holds the matching rule and the classes). One `ReplayCheck` row per
(session date, lane, strategy), written with `update_or_create` on that unique key, so re-running a
date rewrites its rows and never adds one.

Inputs, read here:
- recorded signals: the lane's configured signal source read over the session window through its
  cursor-ordered `read_after` (the `kafka` source reads the `TaSignal` rows the consumer stored; the
  `replay` source plays its file from the lane cursor's anchor; ClickHouse reads its table). A
  source that cannot be read gives status `no_signals`; every live decision is then a data gap;
- live decisions: the lane's decisions of the strategy whose signal falls in the session, with
  their executions' average fill;
- the strategy versions of the day: the `strategy` block (version, params) each decision stored in
  `decision_json`; the first applies from the start of the day, each next one from its first
  decision. A strategy without a decision that day replays with its current row. (Once decisions
  carry `strategy_version`, issue 21 item 6, that column names the version instead.)
- the cost model: the simulated broker's slippage and fee settings (`CostModel`), sizing from the
  strategy's budget as the live sizing gate (`gate_sizing`) computes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Q

from autonomy.engine.backtest import BacktestConfig, CostModel, Sizing
from autonomy.engine.data import BarFrame, datetime_to_ns, frame_from_signals, ns_to_datetime
from autonomy.metrics import REPLAY_CHECKS, REPLAY_MISMATCHES
from autonomy.models import ReplayCheck, ReplayCheckStatus
from autonomy.replay import (
    DETAILS_LIMIT,
    MISMATCH_CLASSES,
    Comparison,
    LiveDecision,
    Version,
    compare,
    replay_actions,
    replay_decisions,
    signal_gaps,
)
from torghut_site.flags import flag_enabled
from trading.lanes import enabled_lane_labels
from trading.models import ExecutionTransition, Strategy, TradeCursor, TradeDecision
from trading.services.signals import signal_source_for
from trading.signals.base import CursorSignalSource, SignalSourceError
from trading.signals.session import NEW_YORK
from trading.signals.types import SignalCursor, SignalEnvelope
from trading.strategies.registry import get_strategy

PAGE = 5000


def session_window(session_date: date) -> tuple[datetime, datetime]:
    """[start, end) of a New York calendar date, as aware datetimes."""
    start = datetime.combine(session_date, time(0), tzinfo=NEW_YORK)
    end = datetime.combine(session_date + timedelta(days=1), time(0), tzinfo=NEW_YORK)
    return start, end


def last_closed_session(now: datetime) -> date:
    """The latest New York date whose regular session (16:00) has closed at `now`."""
    local = now.astimezone(NEW_YORK)
    return local.date() if local.time() >= time(16, 0) else local.date() - timedelta(days=1)


@dataclass(frozen=True)
class RecordedSignals:
    signals: list[SignalEnvelope] | None  # None: the source could not be read
    error: str = ""


def recorded_signals(*, account_label: str, start: datetime, end: datetime) -> RecordedSignals:
    """The lane's recorded signals with start <= event_ts < end, in stream order."""
    source_name = settings.TRADING_SIGNAL_SOURCE
    cursor = TradeCursor.objects.filter(source=source_name, account_label=account_label).first()
    if cursor is None:
        cursor = TradeCursor(source=source_name, account_label=account_label)
    if source_name == "replay" and "anchor" not in cursor.state:
        return RecordedSignals(None, "the replay source has no anchor for this lane")
    try:
        source = signal_source_for(cursor=cursor)
    except NotImplementedError as exc:
        return RecordedSignals(None, str(exc))
    if not isinstance(source, CursorSignalSource):
        return RecordedSignals(None, f"signal source {source_name!r} cannot be read by range")
    out: list[SignalEnvelope] = []
    position = SignalCursor.at(start)
    # `read_after` includes rows at `now`: read up to just before the end
    until = end - timedelta(microseconds=1)
    try:
        while True:
            page = source.read_after(position, limit=PAGE, now=until)
            out.extend(s for s in page.signals if start <= s.event_ts < end)
            if page.last_key is None or page.last_key.event_ts >= until:
                break
            position = page.last_key
    except SignalSourceError as exc:
        return RecordedSignals(None, f"signal source: {exc}")
    return RecordedSignals(out)


def _live_decisions(
    *, account_label: str, strategy: Strategy, start: datetime, end: datetime
) -> list[tuple[LiveDecision, dict[str, Any]]]:
    rows = (
        TradeDecision.objects.filter(
            account_label=account_label, strategy=strategy, event_ts__gte=start, event_ts__lt=end
        )
        .prefetch_related("executions")
        .order_by("event_ts", "symbol", "signal_seq", "pk")
    )
    out = []
    for d in rows:
        qty = notional = Decimal(0)
        for e in d.executions.all():
            if e.filled_qty > 0 and e.avg_fill_price:
                qty += e.filled_qty
                notional += e.filled_qty * e.avg_fill_price
        fill = float(notional / qty) if qty else None
        live = LiveDecision(
            id=d.pk,
            symbol=d.symbol,
            event_ts=d.event_ts,
            seq=d.signal_seq,
            side=d.action,
            status=d.status,
            reject_reason=d.reject_reason,
            qty=float(d.qty),
            arrival_price=float(d.price) if d.price is not None else None,
            fill_price=fill,
            booked_qty=_booked_qty(d) if d.reject_reason == "shorts_not_allowed" else None,
        )
        out.append((live, d.decision_json or {}))
    return out


def _booked_qty(decision: TradeDecision) -> float:
    """The strategy's position on the decision's symbol and lane from the fills recorded (as
    execution transitions) before the decision was made."""
    filled: dict[int, tuple[str, Decimal]] = {}
    for execution_id, side, qty in ExecutionTransition.objects.filter(
        execution__account_label=decision.account_label,
        execution__decision__strategy_id=decision.strategy_id,
        execution__symbol=decision.symbol,
        at__lt=decision.created_at,
    ).values_list("execution_id", "execution__side", "filled_qty"):
        _, known = filled.get(execution_id, (side, Decimal(0)))
        filled[execution_id] = (side, max(known, qty))
    return float(sum((q if s == "buy" else -q for s, q in filled.values()), Decimal(0)))


def _default_budget(strategy: Strategy) -> float | None:
    budget = strategy.max_notional_per_trade or settings.TRADING_MAX_NOTIONAL_PER_TRADE
    return float(budget) if budget is not None else None


def _budget(value: Any) -> float | None:
    """The sizing gate's recorded budget (a decimal string; None under the default quantity)."""
    if value in (None, "", "None"):
        return None
    return float(value)


def day_versions(
    strategy: Strategy, decisions: list[tuple[LiveDecision, dict[str, Any]]]
) -> list[Version]:
    """The strategy versions of the day, from what each live decision recorded (module doc)."""
    versions: dict[tuple[str, str], Version] = {}
    for live, record in decisions:
        block = record.get("strategy") or {}
        params = block.get("params")
        if not isinstance(params, dict):
            continue
        key = (str(block.get("version", "")), json.dumps(params, sort_keys=True))
        if key not in versions:
            sizing = record.get("sizing") or {}
            versions[key] = Version(
                start_ns=datetime_to_ns(live.event_ts),
                version=key[0],
                params=params,
                budget=_budget(sizing.get("budget")),
            )
    if not versions:
        return [
            Version(
                start_ns=0,
                version=strategy.version,
                params=dict(strategy.params or {}),
                budget=_default_budget(strategy),
            )
        ]
    ordered = sorted(versions.values(), key=lambda v: v.start_ns)
    # the first version of the day is in force from the session's start
    return [replace(ordered[0], start_ns=0), *ordered[1:]]


def _config(versions: list[Version], frame: BarFrame) -> BacktestConfig:
    crypto = bool(frame.symbols) and all("/" in s for s in frame.symbols)
    return BacktestConfig(
        costs=CostModel(
            slippage_bps=float(settings.SIMULATED_BROKER_SLIPPAGE_BPS or 0),
            fee_bps=float(settings.SIMULATED_BROKER_FEE_BPS or 0),
            fee_per_share=float(settings.SIMULATED_BROKER_FEE_PER_SHARE or 0),
        ),
        sizing=Sizing(
            qty=float(settings.TRADING_DEFAULT_QTY or 1),
            max_notional_per_trade=versions[0].budget,
            qty_step=1e-8 if crypto else 1.0,
            allow_shorts=flag_enabled("TRADING_ALLOW_SHORTS"),
        ),
    )


_BAR_NS = {"1Sec": 10**9, "1Min": 60 * 10**9, "5Min": 300 * 10**9, "1Hour": 3600 * 10**9}


def strategy_compare(
    *,
    strategy: Strategy,
    decisions: list[tuple[LiveDecision, dict[str, Any]]],
    signals: list[SignalEnvelope],
) -> tuple[Comparison, list[Version], BarFrame]:
    """Replay one strategy over the session's signals and compare with its live decisions."""
    frame = frame_from_signals(signals, timeframe=strategy.base_timeframe)
    versions = day_versions(strategy, decisions)
    actions, _ = replay_actions(frame, get_strategy(strategy.strategy_type), versions)
    live = [d for d, _ in decisions]
    replayed = replay_decisions(
        frame, actions, _config(versions, frame), suppress={d.key for d in live if d.live_gated}
    )
    return compare(live, replayed, frame=frame), versions, frame


def _strategies(*, account_label: str, start: datetime, end: datetime) -> list[Strategy]:
    """Strategies that decided on the lane that day, and those enabled for it since before."""
    decided = set(
        TradeDecision.objects.filter(
            account_label=account_label, event_ts__gte=start, event_ts__lt=end
        ).values_list("strategy_id", flat=True)
    )
    candidates = Strategy.objects.filter(
        Q(pk__in=decided) | Q(enabled=True, created_at__lt=start)
    ).order_by("pk")
    return [
        s
        for s in candidates
        if s.pk in decided or not s.account_labels or account_label in s.account_labels
    ]


def _lanes(*, start: datetime, end: datetime) -> list[str]:
    decided = TradeDecision.objects.filter(event_ts__gte=start, event_ts__lt=end)
    labels = set(decided.values_list("account_label", flat=True).distinct())
    return sorted(labels | set(enabled_lane_labels()))


def replay_check_run(*, session_date: date, account_label: str | None = None) -> list[ReplayCheck]:
    """Check one session on one lane (all lanes by default); returns the rows written."""
    start, end = session_window(session_date)
    labels = [account_label] if account_label else _lanes(start=start, end=end)
    out: list[ReplayCheck] = []
    for label in labels:
        recorded = recorded_signals(account_label=label, start=start, end=end)
        for strategy in _strategies(account_label=label, start=start, end=end):
            decisions = _live_decisions(
                account_label=label, strategy=strategy, start=start, end=end
            )
            if not decisions and not recorded.signals:
                continue  # no session for this strategy: nothing recorded, nothing decided
            out.append(
                _check_store(
                    session_date=session_date,
                    account_label=label,
                    strategy=strategy,
                    decisions=decisions,
                    recorded=recorded,
                )
            )
    return out


def _check_store(
    *,
    session_date: date,
    account_label: str,
    strategy: Strategy,
    decisions: list[tuple[LiveDecision, dict[str, Any]]],
    recorded: RecordedSignals,
) -> ReplayCheck:
    signals = recorded.signals or []
    comparison, versions, frame = strategy_compare(
        strategy=strategy, decisions=decisions, signals=signals
    )
    if recorded.signals is None:
        status = ReplayCheckStatus.NO_SIGNALS
    elif comparison.unexplained:
        status = ReplayCheckStatus.MISMATCHED
    else:
        status = ReplayCheckStatus.CLEAN
    bar_ns = _BAR_NS.get(strategy.base_timeframe, 60 * 10**9)
    counts = comparison.counts
    defaults: dict[str, Any] = {
        "status": status,
        "strategy_versions": [_version_json(v) for v in versions],
        "recorded_signals": len(frame),
        "live_decisions": comparison.live_decisions,
        "replay_decisions": comparison.replay_decisions,
        "matched": comparison.matched,
        **{cls: counts[cls] for cls in MISMATCH_CLASSES},
        "unexplained_mismatches": comparison.unexplained,
        "modelled_slippage_bps": _mean(comparison.modelled_bps),
        "realised_slippage_bps": _mean(comparison.realised_bps),
        "slippage_samples": len(comparison.realised_bps),
        "details": {
            "mismatches": comparison.mismatches[:DETAILS_LIMIT],
            "mismatches_left_off": max(0, len(comparison.mismatches) - DETAILS_LIMIT),
            "signal_gaps": signal_gaps(frame, bar_ns=bar_ns)[:DETAILS_LIMIT],
            "signal_source": settings.TRADING_SIGNAL_SOURCE,
            "signal_error": recorded.error,
        },
    }
    check, _ = ReplayCheck.objects.update_or_create(
        session_date=session_date,
        account_label=account_label,
        strategy=strategy,
        defaults=defaults,
    )
    REPLAY_CHECKS.labels(status=status).inc()
    for cls in MISMATCH_CLASSES:
        if counts[cls]:
            REPLAY_MISMATCHES.labels(**{"class": cls}).inc(counts[cls])
    return check


def _version_json(v: Version) -> dict[str, Any]:
    since = ns_to_datetime(v.start_ns).isoformat() if v.start_ns else "session start"
    return {"version": v.version, "params": dict(v.params), "budget": v.budget, "from": since}


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
