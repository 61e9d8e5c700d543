"""The order feed's rules on plain values, without a database.

Both stores (the set-based Postgres one and the portable ORM one) load state into these small
objects, run the same functions, and write back what they return. Which event applies, how an
execution moves and what its decision copies is `trading.orderstate`'s rule, the one the trading
core's submit, adopt and reconciliation paths apply too; this module runs it over a batch (per
event, in log order) and collects the rows to write, with TCA.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from orderfeed.models import EventOutcome
from orderfeed.normalize import TradeUpdate
from torghut_site.kafka.messages import RawMessage
from trading.orderstate import (
    DecisionValues,
    ExecutionValues,
    OrderStep,
    OrderUpdate,
    order_update_apply,
)
from trading.tca import tca_numbers

APPLIED = EventOutcome.APPLIED.value
UNCHANGED = EventOutcome.UNCHANGED.value
OUT_OF_ORDER = EventOutcome.OUT_OF_ORDER.value
AWAITING_EXECUTION = EventOutcome.AWAITING_EXECUTION.value
UNKNOWN_ORDER = EventOutcome.UNKNOWN_ORDER.value

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
    # what `take` stored last (the fields above are changed by `take` alone): an execution's
    # next event in the batch starts from it instead of building it again
    taken: ExecutionValues | None = None

    def values(self) -> ExecutionValues:
        if self.taken is not None:
            return self.taken
        return ExecutionValues(
            self.status,
            self.submitted_qty,
            self.filled_qty,
            self.avg_fill_price,
            self.last_event_ts,
            self.last_seq,
        )

    def take(self, values: ExecutionValues) -> None:
        self.taken = values
        self.status = values.status
        self.filled_qty = values.filled_qty
        self.avg_fill_price = values.avg_fill_price
        self.last_event_ts = values.last_event_ts
        self.last_seq = values.last_seq


@dataclass(slots=True, eq=False)
class DecisionState:
    """What following and TCA read of one decision (locked while ingest runs)."""

    id: int
    strategy_id: int | None
    status: str
    price: Decimal | None
    executed_at: datetime | None
    reject_reason: str
    moved: bool = False  # changed by this batch: the row is written back
    batch_from: str = ""  # its status before this batch's first move

    taken: DecisionValues | None = None  # as ExecutionState.taken

    def values(self) -> DecisionValues:
        if self.taken is not None:
            return self.taken
        return DecisionValues(self.status, self.executed_at, self.reject_reason)


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
    decisions: list[DecisionState] = field(default_factory=list)
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


def events_apply(
    pending: Sequence[Pending], decisions: dict[int, DecisionState], *, now: datetime
) -> Applied:
    """Apply events to their executions and decisions in log order (topic, partition, offset),
    one event at a time through `trading.orderstate.order_update_apply`.

    An event older than what its execution already applied (`seq`, then event time) is
    `out_of_order` and changes nothing; one that moved status or fill is `applied` and writes a
    transition row; a newer event that moved nothing is `unchanged` but still advances the
    execution's last seq/time and raw order. `decisions`: the batch's locked decisions, changed
    in place (each changed one lands in `Applied.decisions`).
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
        decision = decisions.get(execution.decision_id) if execution.decision_id else None
        step = order_update_apply(
            execution=execution.values(),
            decision=decision.values() if decision is not None else None,
            update=OrderUpdate(
                u.applicable_status, u.filled_qty, u.avg_fill_price, u.event_ts, u.feed_seq
            ),
            now=now,
        )
        if step.stale:
            p.outcome = OUT_OF_ORDER
            result.out_of_order += 1
            continue
        from_status = execution.status
        execution.take(step.execution)
        execution.raw_order = u.order or u.raw
        if not execution.touched:
            execution.touched = True
            result.executions.append(execution)
        if step.execution_moved:
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
        if decision is not None and step.decision_changed:
            _decision_take(decision, step, result)
    return result


def _decision_take(decision: DecisionState, step: OrderStep, result: Applied) -> None:
    assert step.decision is not None
    if not decision.moved:
        decision.moved = True
        decision.batch_from = decision.status
        result.decisions.append(decision)
    decision.taken = step.decision
    decision.status = step.decision.status
    decision.executed_at = step.decision.executed_at
    decision.reject_reason = step.decision.reject_reason


def _log_position(p: Pending) -> tuple[str, int, int]:
    m = p.message
    return (m.topic, m.partition, m.offset)


@dataclass(slots=True)
class Followed:
    """Decision moves and TCA rows that follow a batch's changed executions."""

    decisions: list[DecisionState]
    transitions: list[tuple[Any, ...]]  # TradeDecisionTransition: DECISION_TRANSITION_COLUMNS
    tca: list[tuple[Any, ...]]  # ExecutionTcaMetric: TCA_COLUMNS


def decisions_follow(
    applied: Applied, decisions: dict[int, DecisionState], *, now: datetime
) -> Followed:
    """The rows a batch's decisions and filled executions write: each changed decision, ONE
    transition per decision that moved (from its status before the batch to its status after
    it: new, partial fill and fill in one batch record submitted -> filled), and the TCA row of
    every execution the batch touched that has a fill."""
    result = Followed(decisions=applied.decisions, transitions=[], tca=[])
    for decision in applied.decisions:
        if decision.status != decision.batch_from:
            result.transitions.append(
                (decision.id, decision.batch_from, decision.status, "order_feed", now)
            )
    for execution in applied.executions:
        if execution.filled_qty > 0:
            of = decisions.get(execution.decision_id) if execution.decision_id else None
            result.tca.append(tca_row(execution, of, now=now))
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
