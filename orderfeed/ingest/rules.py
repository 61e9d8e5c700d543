"""The order feed's rules on plain values, without a database.

Both stores (the set-based Postgres one and the portable ORM one) load state into these small
objects, run the same functions, and write back what they return. So which event applies, how an
execution moves, what its decision copies and what TCA says are decided in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from orderfeed.models import EventOutcome
from orderfeed.normalize import TradeUpdate
from torghut_site.kafka import RawMessage
from trading.models.decisions import DecisionStatus
from trading.statemachine import ORDER_TO_DECISION, decision_can_move, execution_may_advance
from trading.tca import tca_numbers

APPLIED = EventOutcome.APPLIED.value
UNCHANGED = EventOutcome.UNCHANGED.value
OUT_OF_ORDER = EventOutcome.OUT_OF_ORDER.value
AWAITING_EXECUTION = EventOutcome.AWAITING_EXECUTION.value
UNKNOWN_ORDER = EventOutcome.UNKNOWN_ORDER.value

_FILLED_DECISION = frozenset({DecisionStatus.PARTIALLY_FILLED, DecisionStatus.FILLED})
_QTY_PLACES = Decimal("0.00000001")


@dataclass(slots=True, eq=False)
class ExecutionState:
    """What ingest reads and writes of one execution (the row is locked while it runs)."""

    id: int
    decision_id: int | None
    account_label: str
    broker_order_id: str
    client_order_id: str
    symbol: str
    side: str
    submitted_qty: Decimal
    filled_qty: Decimal
    avg_fill_price: Decimal | None
    status: str
    last_event_ts: datetime | None
    last_seq: int | None
    raw_order: Any = None
    touched: bool = False  # an event was applied (not older): the row is written back


@dataclass(slots=True, eq=False)
class DecisionState:
    """What following and TCA read of one decision (locked while ingest runs)."""

    id: int
    strategy_id: int | None
    status: str
    price: Decimal | None
    executed_at: datetime | None
    reject_reason: str
    moved: bool = False


@dataclass(slots=True, eq=False)
class Pending:
    """A parsed, not yet stored trade update on its way through one batch."""

    message: RawMessage
    update: TradeUpdate
    execution: ExecutionState | None = None
    decision_id: int | None = None
    outcome: str = UNCHANGED


class BatchState(NamedTuple):
    """What a store's read of one batch found: stored events matching it (fingerprint, topic,
    partition, offset: a superset of the duplicates by log position, the caller keeps exact
    matches), the executions its events name and their decisions, locked."""

    stored: list[tuple[str, str, int, int]]
    executions: list[ExecutionState]
    decisions: dict[int, DecisionState]


@dataclass(slots=True)
class Applied:
    """What applying a batch's events changed, as rows to write."""

    executions: list[ExecutionState]
    transitions: list[tuple[Any, ...]]  # ExecutionTransition: TRANSITION_COLUMNS order
    applied: int = 0
    out_of_order: int = 0
    awaiting_execution: int = 0
    unknown_orders: int = 0


TRANSITION_COLUMNS = ("execution_id", "from_status", "to_status", "filled_qty", "source", "at")
DECISION_TRANSITION_COLUMNS = ("decision_id", "from_status", "to_status", "reason", "at")
TCA_COLUMNS = (
    "execution_id",
    "decision_id",
    "strategy_id",
    "account_label",
    "symbol",
    "side",
    "arrival_price",
    "avg_fill_price",
    "filled_qty",
    "signed_qty",
    "slippage_bps",
    "shortfall_notional",
    "computed_at",
)


def link(pending: Iterable[Pending], executions: Iterable[ExecutionState]) -> list[tuple[str, str]]:
    """Attach each event to its execution: by broker order id, else by client order id, in its
    lane. Returns the (lane, client order id) of the events left without one."""
    by_order: dict[tuple[str, str], ExecutionState] = {}
    by_client: dict[tuple[str, str], ExecutionState] = {}
    for locked in executions:
        if locked.broker_order_id:
            by_order[(locked.account_label, locked.broker_order_id)] = locked
        if locked.client_order_id:
            by_client[(locked.account_label, locked.client_order_id)] = locked
    unlinked: list[tuple[str, str]] = []
    for p in pending:
        u = p.update
        execution: ExecutionState | None = None
        if u.broker_order_id:
            execution = by_order.get((u.account_label, u.broker_order_id))
        if execution is None and u.client_order_id:
            execution = by_client.get((u.account_label, u.client_order_id))
        if execution is not None:
            p.execution = execution
            p.decision_id = execution.decision_id
        elif u.client_order_id:
            unlinked.append((u.account_label, u.client_order_id))
    return unlinked


def events_apply(pending: Sequence[Pending], *, now: datetime) -> Applied:
    """Apply events to their executions in log order (topic, partition, offset).

    An event older than what its execution already applied (`seq`, then event time) is
    `out_of_order`; a status moves only forward (`execution_may_advance`); the filled quantity
    only grows (capped at the order's quantity), and the average price comes with it. An event
    that moved status or fill is `applied` and writes a transition row; a newer event that moved
    nothing is `unchanged` but still advances the execution's last seq/time and raw order.
    """
    result = Applied(executions=[], transitions=[])
    for p in sorted(pending, key=_log_position):
        execution = p.execution
        if execution is None:
            if p.decision_id is not None:
                p.outcome = AWAITING_EXECUTION
                result.awaiting_execution += 1
            else:
                p.outcome = UNKNOWN_ORDER
                result.unknown_orders += 1
            continue
        u = p.update
        if _older(u.feed_seq, u.event_ts, execution):
            p.outcome = OUT_OF_ORDER
            result.out_of_order += 1
            continue
        from_status = execution.status
        advanced = False
        status = u.applicable_status
        if status is not None and execution_may_advance(from_status, status):
            execution.status = status
            advanced = True
        filled = u.filled_qty
        if filled is not None and filled > execution.filled_qty:
            execution.filled_qty = min(filled, execution.submitted_qty)
            if u.avg_fill_price is not None:
                execution.avg_fill_price = u.avg_fill_price
            advanced = True
        if u.event_ts is not None:
            execution.last_event_ts = u.event_ts
        if u.feed_seq is not None:
            execution.last_seq = u.feed_seq
        execution.raw_order = u.order or u.raw
        if not execution.touched:
            execution.touched = True
            result.executions.append(execution)
        if advanced:
            p.outcome = APPLIED
            result.applied += 1
            result.transitions.append(
                (
                    execution.id,
                    from_status,
                    execution.status,
                    execution.filled_qty,
                    "order_feed",
                    now,
                )
            )
        else:
            p.outcome = UNCHANGED
    return result


def _log_position(p: Pending) -> tuple[str, int, int]:
    m = p.message
    return (m.topic, m.partition, m.offset)


def _older(seq: int | None, event_ts: datetime | None, execution: ExecutionState) -> bool:
    last_seq = execution.last_seq
    if seq is not None and last_seq is not None and seq < last_seq:
        return True
    last_ts = execution.last_event_ts
    return event_ts is not None and last_ts is not None and event_ts < last_ts


@dataclass(slots=True)
class Followed:
    """Decision moves and TCA rows that follow a batch's changed executions."""

    decisions: list[DecisionState]
    transitions: list[tuple[Any, ...]]  # TradeDecisionTransition: DECISION_TRANSITION_COLUMNS
    tca: list[tuple[Any, ...]]  # ExecutionTcaMetric: TCA_COLUMNS


def decisions_follow(
    executions: Iterable[ExecutionState], decisions: dict[int, DecisionState], *, now: datetime
) -> Followed:
    """Copy each changed execution's status onto its decision where the decision's lifecycle
    allows it (`executed_at` on the first fill, `broker_rejected` for a rejection), and compute
    the TCA row of every execution with a fill."""
    result = Followed(decisions=[], transitions=[], tca=[])
    for execution in executions:
        decision = decisions.get(execution.decision_id) if execution.decision_id else None
        if decision is not None:
            target = ORDER_TO_DECISION.get(execution.status)
            if (
                target is not None
                and target != decision.status
                and decision_can_move(decision.status, target)
            ):
                result.transitions.append(
                    (decision.id, decision.status, str(target), "order_feed", now)
                )
                decision.status = str(target)
                if target in _FILLED_DECISION:
                    decision.executed_at = decision.executed_at or now
                if target == DecisionStatus.REJECTED and not decision.reject_reason:
                    decision.reject_reason = "broker_rejected"
                if not decision.moved:
                    decision.moved = True
                    result.decisions.append(decision)
            # a fill the decision has not recorded (a partial fill canceled in the same batch):
            # the decision did execute, whatever status it ends in
            if execution.filled_qty > 0 and decision.executed_at is None:
                decision.executed_at = now
                if not decision.moved:
                    decision.moved = True
                    result.decisions.append(decision)
        if execution.filled_qty > 0:
            result.tca.append(tca_row(execution, decision, now=now))
    return result


def tca_row(
    execution: ExecutionState, decision: DecisionState | None, *, now: datetime
) -> tuple[Any, ...]:
    """The TCA row (TCA_COLUMNS) of an execution: fill versus the decision's arrival price.

    The same arithmetic as `trading.services.execution.tca_metric_for` (`trading.tca`), on plain
    values instead of model instances.
    """
    arrival = decision.price if decision is not None else None
    fill = execution.avg_fill_price
    numbers = tca_numbers(
        side=execution.side, arrival=arrival, fill=fill, filled_qty=execution.filled_qty
    )
    return (
        execution.id,
        decision.id if decision is not None else None,
        decision.strategy_id if decision is not None else None,
        execution.account_label,
        execution.symbol,
        execution.side,
        arrival,
        fill,
        execution.filled_qty,
        numbers.signed_qty,
        numbers.slippage_bps,
        numbers.shortfall_notional,
        now,
    )


EVENT_COLUMNS = (
    "event_fingerprint",
    "source_topic",
    "source_partition",
    "source_offset",
    "account_label",
    "feed_seq",
    "event_ts",
    "symbol",
    "broker_order_id",
    "client_order_id",
    "event_type",
    "status",
    "qty",
    "filled_qty",
    "avg_fill_price",
    "raw_event",
    "execution_id",
    "decision_id",
    "outcome",
    "received_at",
    "produced_at",
)


def event_row(p: Pending, now: datetime) -> tuple[Any, ...]:
    """One `OrderEvent` as a value tuple in EVENT_COLUMNS order (`raw_event`: the record's JSON
    text, stored as it arrived)."""
    u = p.update
    m = p.message
    return (
        u.fingerprint,
        m.topic,
        m.partition,
        m.offset,
        u.account_label,
        u.feed_seq,
        u.event_ts,
        u.symbol,
        u.broker_order_id,
        u.client_order_id,
        u.event_type,
        u.status,
        clamp_qty(u.qty),
        clamp_qty(u.filled_qty),
        u.avg_fill_price,
        u.raw_text,
        p.execution.id if p.execution is not None else None,
        p.decision_id,
        p.outcome,
        now,
        m.produced_at,
    )


def clamp_qty(value: Decimal | None) -> Decimal | None:
    """An event's quantity at the column's 8 decimal places (rounded half-even, as before)."""
    return None if value is None else value.quantize(_QTY_PLACES)
