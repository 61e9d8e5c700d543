"""One trade cycle of one account lane (docs/compatibility.md#one-cycle), run by a Celery task every
TRADING_POLL_MS.

kill switch / emergency stop → catalog reload → enabled strategies → signal batch after the
cursor → feature-quality gate → prices to the broker → account snapshot → universe → every
strategy's intent per signal → netting per symbol (`trading.netting`) → per intent: decision
chain → firewall → submit → cursor commit → safety evaluation.

A lane runs in at most one worker at a time (lease). Whatever happens, re-running a cycle over
the same signals creates no second decision or order: decisions are keyed by their hash.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from torghut_site.flags import flag_enabled
from trading.brokers.base import FINAL_ORDER_STATUSES, Broker, BrokerError
from trading.checks import dspy_artifact_error
from trading.firewall import OrderFirewall
from trading.gates import CycleContext, OpenOrder, RiskLimits, StrategySpec
from trading.lanes import LaneConfig, UnknownLaneError, broker_for_lane, lane_config
from trading.metrics import (
    CYCLE_DURATION,
    CYCLES,
    KILL_SWITCH_CANCELS,
    NO_SIGNAL,
    NO_SIGNAL_WINDOWS,
    SIGNAL_LAG,
    SIGNAL_STALENESS,
    SIGNAL_STALENESS_ALERTS,
    SIGNALS,
    SIGNALS_INVALID,
)
from trading.models import Execution, LaneState, SafetyEvent, Strategy, TradeCursor, TradeDecision
from trading.models.decisions import DecisionStatus
from trading.models.safety import SafetyEventKind
from trading.netting import net_intents, netting_intent
from trading.ports import sim_trade_updates_flush
from trading.selectors.allocation import strategy_books
from trading.selectors.books import strategy_open_sells
from trading.selectors.safety import (
    fallback_window,
    kill_switch_of,
    kill_switch_state,
)
from trading.selectors.trade_stream import trade_stream_health
from trading.services.accounts import account_snapshot_current
from trading.services.catalog import catalog_apply
from trading.services.decisions import (
    decision_candidate,
    decision_process,
    strategy_record_error,
    strategy_record_success,
    strategy_spec,
)
from trading.services.equity import lane_equity_track, loss_limit_reasons
from trading.services.lanes import (
    lane_ensure,
    lane_lease_acquire,
    lane_lease_release,
    lane_state_update,
    lease_owner_id,
)
from trading.services.reviews import ready_reviews, review_continue
from trading.services.safety import (
    emergency_stop_evaluate,
    emergency_stop_latch,
    kill_switch_flag_observe,
)
from trading.services.signals import cursor_get, cursor_store, cursor_value, signal_source_for
from trading.services.trade_stream import trade_stream_gauge_set
from trading.services.universe import universe_resolve
from trading.signals.base import SignalSourceError
from trading.signals.session import market_is_open
from trading.signals.types import SignalBatch, SignalCursor, SignalEnvelope
from trading.strategies.base import Intent
from trading.strategies.registry import get_strategy

logger = logging.getLogger(__name__)

REQUIRED_FEATURES = ("macd", "macd_signal", "rsi14")
FALLBACK_RATIO = "fallback_ratio_exceeded"


@dataclass
class CycleResult:
    account_label: str
    status: str = "ok"
    signals: int = 0
    invalid_signals: int = 0
    intents: int = 0
    decisions: int = 0
    submitted: int = 0
    rejected: int = 0
    duplicates: int = 0
    deferred: int = 0
    pending_review: int = 0
    reviews_continued: int = 0
    cancelled_orders: int = 0
    trade_updates: int = 0
    no_signal_reason: str = ""
    # the lane's broker stream when the decisions were made: "" (not watched), healthy,
    # disconnected or silent (the last two refuse risk-increasing orders)
    trade_updates_stream: str = ""
    emergency_stop: str = ""
    error: str = ""
    outcomes: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def enabled_strategies(*, account_label: str, now: datetime) -> list[Strategy]:
    strategies = []
    for strategy in Strategy.objects.filter(enabled=True).order_by("priority", "name"):
        if strategy.account_labels and account_label not in strategy.account_labels:
            continue
        if strategy.degraded_until is not None and strategy.degraded_until > now:
            continue
        strategies.append(strategy)
    return strategies


def feature_quality_reasons(signals: list[SignalEnvelope], *, now: datetime) -> list[str]:
    """The batch quality check (docs/compatibility.md#one-cycle): null rate, staleness p95,
    duplicate ratio, monotonic timestamps."""
    if not signals:
        return []
    reasons = []
    n = len(signals)
    for name in REQUIRED_FEATURES:
        missing = sum(1 for s in signals if name not in s.features)
        if missing / n > settings.TRADING_FEATURE_MAX_REQUIRED_NULL_RATE:
            reasons.append(f"null_rate_exceeded:{name}")
    staleness = sorted(((s.ingest_ts or now) - s.event_ts).total_seconds() * 1000 for s in signals)
    p95 = staleness[min(n - 1, math.ceil(0.95 * n) - 1)]
    if p95 > settings.TRADING_FEATURE_MAX_STALENESS_MS:
        reasons.append("staleness_p95_exceeded")
    keys = {(s.event_ts, s.symbol, s.seq) for s in signals}
    if (n - len(keys)) / n > settings.TRADING_FEATURE_MAX_DUPLICATE_RATIO:
        reasons.append("duplicate_ratio_exceeded")
    if any(
        (b.event_ts, b.symbol, b.seq) < (a.event_ts, a.symbol, a.seq)
        for a, b in zip(signals, signals[1:], strict=False)
    ):
        reasons.append("non_monotonic_timestamps")
    return reasons


def _latest_prices(signals: list[SignalEnvelope]) -> dict[str, tuple[Decimal, datetime]]:
    prices: dict[str, tuple[Decimal, datetime]] = {}
    for signal in signals:
        if signal.price is not None:
            prices[signal.symbol] = (signal.price, signal.event_ts)
    return prices


def orders_cancel_all(
    *, lane: LaneConfig, reason: str, firewall: OrderFirewall | None = None
) -> int:
    """Cancel every open order of a lane through the firewall (kill switch, emergency stop)."""
    has_open = (
        Execution.objects.filter(account_label=lane.label)
        .exclude(status__in=FINAL_ORDER_STATUSES)
        .exists()
        # a decision still `submitting` may have an order the broker accepted that we have not
        # recorded yet (an ambiguous answer whose lookup failed, a crash before our commit)
        or TradeDecision.objects.filter(
            account_label=lane.label, status=DecisionStatus.SUBMITTING
        ).exists()
    )
    if not has_open and lane.broker == "simulated":
        return 0  # the simulated broker holds no order we do not know of
    firewall = firewall or OrderFirewall(lane=lane)
    cancelled = firewall.cancel_all()
    if cancelled:
        KILL_SWITCH_CANCELS.labels(account=lane.label).inc(len(cancelled))
        SafetyEvent.objects.create(
            kind=SafetyEventKind.KILL_SWITCH_CANCEL,
            account_label=lane.label,
            actor_label="system",
            reason=reason,
            details={"order_ids": cancelled},
        )
    return len(cancelled)


def _context(*, lane: LaneConfig, broker: Broker, now: datetime, kill_switch: bool) -> CycleContext:
    snapshot = account_snapshot_current(account_label=lane.label, broker=broker)
    positions: dict[str, Decimal] = {}
    prices: dict[str, Decimal] = {}
    for row in snapshot.positions:
        qty = Decimal(row["qty"])
        positions[row["symbol"]] = qty
        if qty:
            prices[row["symbol"]] = Decimal(row["market_value"]) / qty
    open_orders = [
        OpenOrder(e.broker_order_id, e.symbol, e.side, e.order_type)
        for e in Execution.objects.filter(account_label=lane.label).exclude(
            status__in=FINAL_ORDER_STATUSES
        )
    ]
    last_decision_at: dict[str, datetime] = {}
    if settings.TRADING_COOLDOWN_SECONDS:
        for symbol, created in (
            TradeDecision.objects.filter(account_label=lane.label)
            .exclude(status="rejected")
            .order_by("symbol", "-created_at")
            .values_list("symbol", "created_at")
        ):
            last_decision_at.setdefault(symbol, created)
    limits = RiskLimits.from_settings(kill_switch=kill_switch)
    # the bridge writes wall-clock times: judged against the wall clock, not the cycle's `now`
    trade_stream = trade_stream_health(lane=lane, now=timezone.now())
    trade_stream_gauge_set(account_label=lane.label, health=trade_stream)
    # each strategy's own book: its sells and its max_position_pct_equity are judged on it
    books = strategy_books(account_label=lane.label)
    for symbol, fill_price in books.fill_prices.items():
        prices.setdefault(symbol, fill_price)  # a symbol only the strategies' books hold
    return CycleContext(
        account_label=lane.label,
        is_live=lane.is_live,
        equity=snapshot.equity,
        cash=snapshot.cash,
        buying_power=snapshot.buying_power,
        positions=positions,
        prices=prices,
        universe=None,
        limits=limits,
        now=now,
        open_orders=open_orders,
        last_decision_at=last_decision_at,
        strategy_positions=books.positions,
        strategy_open_sells=strategy_open_sells(account_label=lane.label),
        trade_stream=trade_stream,
    )


_catalog_checked: dict[str, float] = {}


def _maybe_reload_catalog() -> None:
    path = settings.TRADING_STRATEGY_CONFIG_PATH
    if not path:
        return
    last = _catalog_checked.get(path, 0.0)
    if time.monotonic() - last < settings.TRADING_STRATEGY_RELOAD_SECONDS:
        return
    _catalog_checked[path] = time.monotonic()
    try:
        result = catalog_apply(path=Path(path), mode=settings.TRADING_STRATEGY_CONFIG_MODE)
    except Exception:  # a broken catalog file keeps the strategies we have
        logger.exception("strategy catalog reload failed", extra={"path": path})
        return
    if result.applied:
        logger.info(
            "strategy catalog applied",
            extra={
                "catalog_hash": result.file_hash,
                "strategies_created": result.created,
                "strategies_updated": result.updated,
                "strategies_disabled": result.disabled,
            },
        )


def broker_updates_flush(*, lane: LaneConfig) -> int:
    """Move the simulated broker's trade updates onto the order feed (Kafka, or applied here).

    Alpaca lanes need nothing: their updates reach Kafka through `run_trade_updates_stream`. A
    Kafka outage leaves the updates in the outbox for the next cycle; reconciliation keeps the
    executions right meanwhile.
    """
    if lane.broker != "simulated":
        return 0
    from confluent_kafka import KafkaException

    from torghut_site.kafka.topics import TopicMissing

    try:
        return sim_trade_updates_flush(account_label=lane.label)
    except KafkaException as exc:
        # a missing topic does not heal by itself (`kafka_topics ensure` creates it): an error
        log = logger.error if isinstance(exc, TopicMissing) else logger.warning
        log("order feed publish failed", extra={"lane": lane.label, "error": str(exc)})
        return 0


def trading_cycle_run(*, account_label: str, now: datetime | None = None) -> CycleResult:
    lane = lane_config(account_label)
    result = CycleResult(account_label=lane.label)
    if not lane.enabled:
        result.status = "lane_disabled"
        return result
    lane_ensure(lane=lane)
    owner = lease_owner_id()
    if not lane_lease_acquire(account_label=lane.label, owner=owner):
        result.status = "lane_busy"
        CYCLES.labels(account=lane.label, outcome="lane_busy").inc()
        return result
    started = time.perf_counter()
    now = now or timezone.now()
    lane_state_update(account_label=lane.label, last_cycle_started_at=now)
    try:
        _run(lane=lane, result=result, now=now)
        result.trade_updates = broker_updates_flush(lane=lane)
        lane_state_update(
            account_label=lane.label,
            last_cycle_finished_at=timezone.now(),
            last_cycle_status=result.status,
            last_cycle_summary=result.as_json(),
            last_error=result.error,
        )
    except Exception as exc:
        result.status = "error"
        lane_state_update(
            account_label=lane.label,
            last_cycle_finished_at=timezone.now(),
            last_cycle_status="error",
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        CYCLES.labels(account=lane.label, outcome="error").inc()
        raise
    finally:
        lane_lease_release(account_label=lane.label, owner=owner)
        CYCLE_DURATION.labels(account=lane.label).observe(time.perf_counter() - started)
    CYCLES.labels(account=lane.label, outcome=result.status).inc()
    return result


@dataclass(frozen=True)
class _CycleExit:
    """How a cycle leaves `_run`: the cursor to move past the batch (None: the signals wait
    for the next cycle) and whether the post-batch emergency-stop evaluation runs."""

    cursor: TradeCursor | None = None
    cursor_after: SignalCursor | None = None
    evaluate_safety: bool = False


_HOLD_CURSOR = _CycleExit()


def _run(*, lane: LaneConfig, result: CycleResult, now: datetime) -> None:
    """One cycle of a leased lane. Safety is evaluated in this order, on every path:

    1. `_limits_watch`: the equity marks; a loss limit or the fallback ratio latches the
       emergency stop before anything can submit;
    2. the kill switch, then the emergency stop: either cancels the lane's open orders;
    3. the DSPy artifact guard: nothing is decided while the review program cannot run;
    4. reviewed decisions go on (under the kill switch's risk limits);
    5. `TRADING_ENABLED`: off, no signal is read;
    6. the batch: continuity and market hours recorded, the feature-quality and universe
       gates, then each decision through its own gates and the firewall;
    7. the one exit: the cursor moves past a consumed batch, then `_evaluate_safety` runs where
       the batch met the market (no signals, universe blocked, decided).

    3, 5 and a signal source error leave the cursor where it is, so the signals wait.
    """
    broker = broker_for_lane(lane)
    firewall = OrderFirewall(lane=lane)
    kill_active = _stops_apply(lane=lane, broker=broker, firewall=firewall, result=result, now=now)
    exit_ = _HOLD_CURSOR
    if _may_read_signals(
        lane=lane, broker=broker, firewall=firewall, kill_active=kill_active, result=result, now=now
    ):
        exit_ = _signals_run(
            lane=lane,
            broker=broker,
            firewall=firewall,
            kill_active=kill_active,
            result=result,
            now=now,
        )
    if exit_.cursor is not None:
        cursor_store(cursor=exit_.cursor, value=exit_.cursor_after)
    if exit_.evaluate_safety:
        _evaluate_safety(lane=lane, result=result)


def _stops_apply(
    *, lane: LaneConfig, broker: Broker, firewall: OrderFirewall, result: CycleResult, now: datetime
) -> bool:
    """Steps 1-2 of `_run`: latch on the limits, then cancel the lane's orders under the kill
    switch or the emergency stop. Returns whether the kill switch is on."""
    # before anything can submit: a stop latched here cancels the lane's orders just below
    _limits_watch(lane=lane, broker=broker, result=result, now=now)
    # the flag's flip is audited and posted here as well as by beat; its value and the safety row
    # read for that are the ones the kill switch and the emergency stop are decided on (no
    # second read of either; the row is read after `_limits_watch` may have latched the stop)
    observed = kill_switch_flag_observe()
    kill = kill_switch_of(observed.state, flag=observed.flag)
    stopped = observed.state is not None and observed.state.emergency_stop_active
    if kill.active or stopped:
        result.cancelled_orders = orders_cancel_all(
            lane=lane, reason="kill_switch" if kill.active else "emergency_stop", firewall=firewall
        )
    return kill.active


def _may_read_signals(
    *,
    lane: LaneConfig,
    broker: Broker,
    firewall: OrderFirewall,
    kill_active: bool,
    result: CycleResult,
    now: datetime,
) -> bool:
    """Steps 3-5 of `_run`: the DSPy artifact guard, reviewed decisions, `TRADING_ENABLED`."""
    dspy_error = dspy_artifact_error()
    if dspy_error is not None:
        # nothing is decided or sent while the configured review program cannot run; the
        # cursor stays, so the signals wait for the artifact's promotion
        result.status = "dspy_artifact_not_promoted"
        result.error = f"{dspy_error.msg} [{dspy_error.id}]"
        return False
    # decisions whose LLM review came in (or expired) since: they go on before new signals
    continued = reviews_continue(
        lane=lane, broker=broker, firewall=firewall, kill_switch=kill_active, now=now
    )
    result.reviews_continued = sum(continued.values())
    if not flag_enabled("TRADING_ENABLED"):
        # signals wait in the source; the lookback fast-forward drops what grows stale meanwhile
        result.status = "trading_disabled"
        return False
    return True


def _signals_run(
    *,
    lane: LaneConfig,
    broker: Broker,
    firewall: OrderFirewall,
    kill_active: bool,
    result: CycleResult,
    now: datetime,
) -> _CycleExit:
    """Step 6 of `_run`: read the batch after the cursor and take it through the gates."""
    _maybe_reload_catalog()
    strategies = enabled_strategies(account_label=lane.label, now=now)
    cursor = cursor_get(account_label=lane.label, now=now)
    batch = _batch_fetch(cursor=cursor, result=result, now=now)
    if batch is None:
        return _HOLD_CURSOR  # nothing is skipped: the next cycle asks again
    signals = _batch_record(lane=lane, broker=broker, batch=batch, result=result, now=now)
    if not strategies:
        result.status = "no_enabled_strategies"
        return _CycleExit(cursor=cursor, cursor_after=batch.cursor_after)
    if not signals:
        result.status = "no_signals"
        result.no_signal_reason = batch.no_signal_reason or "no_signals_in_window"
        return _CycleExit(cursor=cursor, cursor_after=batch.cursor_after, evaluate_safety=True)
    if flag_enabled("TRADING_FEATURE_QUALITY_ENABLED"):
        quality = feature_quality_reasons(signals, now=now)
        if quality:
            result.status = "feature_quality_rejected"
            result.outcomes = {reason: 1 for reason in quality}
            return _CycleExit(cursor=cursor, cursor_after=batch.cursor_after)
    _signals_decide(
        lane=lane,
        broker=broker,
        firewall=firewall,
        signals=signals,
        strategies=strategies,
        kill_active=kill_active,
        result=result,
        now=now,
    )
    return _CycleExit(cursor=cursor, cursor_after=batch.cursor_after, evaluate_safety=True)


def _batch_fetch(*, cursor: TradeCursor, result: CycleResult, now: datetime) -> SignalBatch | None:
    """The signals after the cursor, or None (and the cycle's status) if the source failed."""
    source = signal_source_for(cursor=cursor)
    try:
        return source.fetch(cursor_value(cursor), limit=settings.TRADING_SIGNAL_BATCH_SIZE, now=now)
    except SignalSourceError as exc:
        # the cursor stays where it is: nothing is skipped, the next cycle asks again
        result.status = "signal_source_error"
        result.no_signal_reason = "signal_source_error"
        result.error = f"signal source: {exc}"[:2000]
        return None


def _batch_record(
    *, lane: LaneConfig, broker: Broker, batch: SignalBatch, result: CycleResult, now: datetime
) -> list[SignalEnvelope]:
    """Count the batch, record the lane's signal continuity and market session, and give the
    broker the batch's prices."""
    signals = list(batch.signals)
    result.signals = len(signals)
    result.invalid_signals = batch.invalid_rows
    SIGNALS.labels(account=lane.label).inc(len(signals))
    if batch.invalid_rows:
        SIGNALS_INVALID.labels(account=lane.label).inc(batch.invalid_rows)
    _record_continuity(
        lane=lane,
        broker=broker,
        batch_reason=batch.no_signal_reason or "",
        lag=batch.lag_seconds,
        latest=batch.latest_event_ts,
        now=now,
    )
    if signals:
        broker.observe_prices(_latest_prices(signals))
    return signals


def _signals_decide(
    *,
    lane: LaneConfig,
    broker: Broker,
    firewall: OrderFirewall,
    signals: list[SignalEnvelope],
    strategies: list[Strategy],
    kill_active: bool,
    result: CycleResult,
    now: datetime,
) -> None:
    """The universe gate, then every strategy's intent through the decision chain."""
    universe = universe_resolve()
    lane_state_update(account_label=lane.label, universe_status=universe.status)
    ctx = _context(lane=lane, broker=broker, now=now, kill_switch=kill_active)
    ctx.universe = universe.symbols
    result.trade_updates_stream = ctx.trade_stream.state
    for signal in signals:
        if signal.price is not None:
            ctx.prices[signal.symbol] = signal.price
    if universe.blocked_reason:
        result.status = "universe_blocked"
        result.no_signal_reason = universe.blocked_reason
        return
    pending = _batch_intents(signals=signals, strategies=strategies, result=result)
    _batch_decide(pending=pending, ctx=ctx, firewall=firewall, result=result)


_PendingIntent = tuple[SignalEnvelope, Strategy, StrategySpec, Intent]


def _batch_intents(
    *, signals: list[SignalEnvelope], strategies: list[Strategy], result: CycleResult
) -> list[_PendingIntent]:
    """Every strategy's intent for every signal of the batch, in signal then strategy order."""
    specs = [
        (strategy, strategy_spec(strategy), get_strategy(strategy.strategy_type))
        for strategy in strategies
    ]
    pending: list[_PendingIntent] = []
    for signal in signals:
        for strategy, spec, plugin in specs:
            if spec.base_timeframe != signal.timeframe:
                continue
            try:
                intent = plugin.evaluate(signal, spec.params)
            except Exception as exc:  # noqa: BLE001 - one broken strategy must not stop the others
                strategy_record_error(strategy=strategy, error=exc)
                continue
            strategy_record_success(strategy=strategy)
            if intent is not None:
                result.intents += 1
                pending.append((signal, strategy, spec, intent))
    return pending


def _batch_decide(
    *,
    pending: list[_PendingIntent],
    ctx: CycleContext,
    firewall: OrderFirewall,
    result: CycleResult,
) -> None:
    """Net the batch's intents per symbol, then take each through the decision chain in order
    (a netted-out intent is recorded as a rejected decision)."""
    netted = net_intents(
        [
            netting_intent(spec=spec, signal=signal, intent=intent, ctx=ctx)
            for signal, _, spec, intent in pending
        ]
    )
    for index, (signal, strategy, spec, intent) in enumerate(pending):
        outcome = decision_process(
            strategy=strategy,
            spec=spec,
            signal=signal,
            intent=intent,
            ctx=ctx,
            firewall=firewall,
            netting=netted[index].verdict() if index in netted else None,
        )
        result.outcomes[outcome.result] = result.outcomes.get(outcome.result, 0) + 1
        if outcome.result == "duplicate":
            result.duplicates += 1
            continue
        result.decisions += 1
        if outcome.result in ("submitted", "adopted"):
            result.submitted += 1
        elif outcome.result == "deferred":
            result.deferred += 1
        elif outcome.result == "pending_review":
            result.pending_review += 1
        else:
            result.rejected += 1


def reviews_continue(
    *, lane: LaneConfig, broker: Broker, firewall: OrderFirewall, kill_switch: bool, now: datetime
) -> dict[str, int]:
    """Carry on every decision of the lane whose review is in (the caller holds the lease)."""
    ready = ready_reviews(account_label=lane.label)
    if not ready:
        return {}
    ctx = _context(lane=lane, broker=broker, now=now, kill_switch=kill_switch)
    counts: dict[str, int] = {}
    for review in ready:
        decision = review.decision
        if decision.price is not None:
            ctx.prices[decision.symbol] = decision.price
        outcome = review_continue(
            review=review, candidate=decision_candidate(decision), ctx=ctx, firewall=firewall
        )
        counts[outcome.result] = counts.get(outcome.result, 0) + 1
    return counts


def lane_reviews_continue(*, account_label: str, now: datetime | None = None) -> dict[str, int]:
    """Carry on a lane's reviewed decisions now, if no cycle holds the lane (else the cycle
    will: it does so first thing)."""
    try:
        lane = lane_config(account_label)
    except UnknownLaneError:
        return {}  # a lane no longer configured: its decisions stay where they are
    if not lane.enabled or not ready_reviews(account_label=lane.label):
        return {}
    owner = f"{lease_owner_id()}:llm-review"
    if not lane_lease_acquire(account_label=lane.label, owner=owner):
        return {"lane_busy": 1}
    try:
        return reviews_continue(
            lane=lane,
            broker=broker_for_lane(lane),
            firewall=OrderFirewall(lane=lane),
            kill_switch=kill_switch_state().active,
            now=now or timezone.now(),
        )
    finally:
        lane_lease_release(account_label=lane.label, owner=owner)


def _record_continuity(
    *,
    lane: LaneConfig,
    broker: Broker,
    batch_reason: str,
    lag: float | None,
    latest: datetime | None,
    now: datetime,
) -> None:
    state = LaneState.objects.get(account_label=lane.label)
    streak = (
        state.no_signal_streak + 1
        if batch_reason and batch_reason == state.no_signal_reason
        else (1 if batch_reason else 0)
    )
    market_open = _market_open(broker=broker, now=now)
    if batch_reason:
        NO_SIGNAL.labels(account=lane.label, reason=batch_reason).inc()
        _count_staleness(lane=lane, reason=batch_reason, streak=streak, market_open=market_open)
    if lag is not None:
        SIGNAL_LAG.labels(account=lane.label).set(lag)
    lane_state_update(
        account_label=lane.label,
        no_signal_reason=batch_reason,
        no_signal_streak=streak,
        signal_lag_seconds=lag,
        last_signal_ts=latest or state.last_signal_ts,
        market_open=market_open,
    )


def _count_staleness(*, lane: LaneConfig, reason: str, streak: int, market_open: bool) -> None:
    """The original's signal-continuity counters for one cycle without a signal."""
    NO_SIGNAL_WINDOWS.labels(account=lane.label).inc()
    expected = not market_open and reason in settings.TRADING_SIGNAL_MARKET_CLOSED_EXPECTED_REASONS
    kind = "expected" if expected else "actionable"
    SIGNAL_STALENESS[kind].labels(account=lane.label, reason=reason).inc()
    if not expected and streak == settings.TRADING_SIGNAL_NO_SIGNAL_STREAK_ALERT_THRESHOLD:
        SIGNAL_STALENESS_ALERTS.labels(account=lane.label, reason=reason).inc()


def _market_open(*, broker: Broker, now: datetime) -> bool:
    """Market session from the broker's clock; the Mon–Fri 09:30–16:00 New York rule if the
    clock cannot be read."""
    try:
        return broker.get_clock().is_open
    except Exception:  # noqa: BLE001 - any broker failure falls back to the calendar rule
        return market_is_open(now)


def _evaluate_safety(*, lane: LaneConfig, result: CycleResult) -> None:
    state = LaneState.objects.get(account_label=lane.label)
    verdict = emergency_stop_evaluate(lane=state, snapshot={"cycle": result.as_json()})
    if verdict.triggered:
        result.emergency_stop = "triggered"
        result.cancelled_orders += orders_cancel_all(lane=lane, reason="emergency_stop")
    elif verdict.recovered:
        result.emergency_stop = "recovered"
    elif verdict.active and not result.emergency_stop:
        result.emergency_stop = "active"


def _limits_watch(*, lane: LaneConfig, broker: Broker, result: CycleResult, now: datetime) -> None:
    """Move the lane's equity marks and latch the emergency stop on a loss limit (drawdown from
    the high-water mark, the session's daily loss) or on too many submits without a clean broker
    answer. None of these recovers by itself."""
    try:
        snapshot = account_snapshot_current(account_label=lane.label, broker=broker)
    except BrokerError as exc:
        # the marks wait for the next cycle; the steps below meet the same broker and say so
        logger.warning("account snapshot failed", extra={"lane": lane.label, "error": str(exc)})
        return
    marks = lane_equity_track(account_label=lane.label, equity=snapshot.equity, now=now)
    reasons = loss_limit_reasons(marks=marks)
    window = fallback_window(account_label=lane.label)
    if window.counts and window.ratio >= settings.TRADING_ROLLBACK_FALLBACK_RATIO_LIMIT:
        reasons.append(FALLBACK_RATIO)
    verdict = emergency_stop_latch(
        reasons=reasons,
        account_label=lane.label,
        snapshot={
            **marks.as_json(),
            "fallback": {"submits": window.submits, "fallbacks": window.fallbacks},
        },
        cancel_all_lanes=False,
    )
    if verdict.triggered:
        result.emergency_stop = "triggered"
