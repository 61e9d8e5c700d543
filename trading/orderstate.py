"""The one rule that applies a broker order update to an execution and its decision.

Every path that learns an order's state goes through `order_update_apply`: the order feed (both
ingest stores, `orderfeed.ingest.rules.events_apply`, one event at a time in log order within a
batch), and `trading.services.execution.execution_apply_order` (submit, adopt after a duplicate or
ambiguous submit, and reconciliation). Pure: plain frozen values in and out, no database, no
clock (the caller passes `now`); callers read the rows, call this, and write what it returns.

The rule, in the order it acts:
1. stale: an update older than what the execution applied (its `seq` below the last applied
   seq, or its event time before the last applied event time; either one decides, a missing
   value never does) changes nothing, not even the last seq/time;
2. a final execution (filled, canceled, expired, rejected, replaced) never moves again: status,
   filled qty and average price stay; the last seq/time still advance;
3. status: the execution takes the update's status when it ranks at or above its own
   (pending_new < new, accepted, ... < pending_cancel, pending_replace < partially_filled
   < done_for_day < final); a lower or unknown status is ignored;
4. fill: the execution takes the update's cumulative filled qty (capped at the order's qty) when
   it is larger, with the update's average price; an update without a price keeps the last
   known one. The filled qty never decreases;
5. a change of status or filled qty is `execution_moved`: one execution transition row;
6. after every update that is not stale, the decision follows the execution as it now is:
   `ORDER_TO_DECISION[status]`, except that an order with a fill means `partially_filled` while
   it is open and `canceled` when it ended `rejected`. The decision moves when its lifecycle
   (`DECISION_TRANSITIONS`) allows it, else it stays;
7. `reject_reason` is written only on a move to `rejected`: `broker_rejected`, unless the
   decision already has a reason, which is kept;
8. `executed_at = now` the first time the order has a fill (filled qty > 0) or the decision
   moves to partially_filled/filled, whatever the decision's status or move; never changed
   after.

Decisions taken where the two former copies of this rule (the order feed's and the trading
core's) differed, each for money safety:
- `executed_at` (8): the feed set it for any fill, also when the decision did not move (an order
  filled partly and canceled in one batch; a decision already final), the trading core only on a
  move to partially_filled/filled. A decision whose order has a fill executed, whatever status it
  ends in: the feed's rule. It also makes a partial fill then cancel give the same decision
  whether the two arrive as two updates or as one snapshot.
- `reject_reason` (7): the trading core overwrote it with `broker_rejected`; an earlier reason is
  kept now (the feed's rule).
- a final execution (2): both copies still raised its filled qty. A broker's final order carries
  its final fill, so nothing after it is newer.
- the average price (4): the trading core cleared it when a larger fill came without a price.
- following (6): the trading core followed only when the execution changed, so a decision left
  behind its order never caught up; the feed followed once per batch from the execution's last
  status, so a partial fill then `rejected` in one batch rejected the decision, and in two batches
  left it `partially_filled` under a final order. Now it follows after every update, and an order
  with a fill never makes its decision `rejected` (the decision executed) or `submitted`.
- staleness (1): only the feed's updates carry a sequence and an event time; a broker snapshot
  (reconciliation, submit, adopt) carries neither and is never stale. Rules 2-4 keep it from
  moving anything backwards.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from trading.brokers.base import FINAL_ORDER_STATUSES

# decision statuses (`trading.models.decisions.DecisionStatus` values, plain: no ORM here)
PLANNED = "planned"
PENDING_REVIEW = "pending_review"
REJECTED = "rejected"
SUBMITTING = "submitting"
SUBMITTED = "submitted"
PARTIALLY_FILLED = "partially_filled"
FILLED = "filled"
CANCELED = "canceled"
EXPIRED = "expired"

BROKER_REJECTED = "broker_rejected"

DECISION_TRANSITIONS: dict[str, frozenset[str]] = {
    PLANNED: frozenset({REJECTED, PENDING_REVIEW, SUBMITTING}),
    PENDING_REVIEW: frozenset({REJECTED, SUBMITTING}),
    SUBMITTING: frozenset({SUBMITTED, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED, REJECTED}),
    SUBMITTED: frozenset({PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED, REJECTED}),
    PARTIALLY_FILLED: frozenset({FILLED, CANCELED, EXPIRED}),
    FILLED: frozenset(),
    CANCELED: frozenset(),
    EXPIRED: frozenset(),
    REJECTED: frozenset(),
}
DECISION_FINAL = frozenset(s for s, nxt in DECISION_TRANSITIONS.items() if not nxt)
_EXECUTED = frozenset({PARTIALLY_FILLED, FILLED})

# broker order status -> the decision status it implies (rule 6 adjusts it for an order with fills)
ORDER_TO_DECISION: dict[str, str] = {
    "new": SUBMITTED,
    "accepted": SUBMITTED,
    "pending_new": SUBMITTED,
    "accepted_for_bidding": SUBMITTED,
    "calculated": SUBMITTED,
    "pending_cancel": SUBMITTED,
    "pending_replace": SUBMITTED,
    "suspended": SUBMITTED,
    "stopped": SUBMITTED,
    "partially_filled": PARTIALLY_FILLED,
    "filled": FILLED,
    "done_for_day": EXPIRED,
    "canceled": CANCELED,
    "expired": EXPIRED,
    "replaced": CANCELED,
    "rejected": REJECTED,
}

# execution status ranks: an update never moves an order backwards
EXECUTION_RANK: dict[str, int] = {
    "pending_new": 0,
    "new": 1,
    "accepted": 1,
    "accepted_for_bidding": 1,
    "calculated": 1,
    "suspended": 1,
    "stopped": 1,
    "pending_replace": 2,
    "pending_cancel": 2,
    "partially_filled": 3,
    "done_for_day": 4,
    "filled": 5,
    "canceled": 5,
    "expired": 5,
    "replaced": 5,
    "rejected": 5,
}


def decision_can_move(from_status: str, to_status: str) -> bool:
    return to_status in DECISION_TRANSITIONS.get(from_status, frozenset())


def execution_is_final(status: str) -> bool:
    return status in FINAL_ORDER_STATUSES


def execution_may_advance(from_status: str, to_status: str) -> bool:
    if from_status == to_status or execution_is_final(from_status):
        return False
    return EXECUTION_RANK.get(to_status, -1) >= EXECUTION_RANK.get(from_status, 0)


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """One broker report of an order: a feed event or a snapshot from the broker's API."""

    status: str | None  # None (or a status we do not know): no status move
    filled_qty: Decimal | None  # cumulative; None: not reported
    avg_fill_price: Decimal | None
    event_ts: datetime | None = None  # the feed's event time; None for a snapshot
    seq: int | None = None  # the feed's sequence number; None for a snapshot


@dataclass(frozen=True, slots=True)
class ExecutionValues:
    """What the rule reads and writes of an execution (`order_feed_last_*`: `last_*`)."""

    status: str
    submitted_qty: Decimal
    filled_qty: Decimal
    avg_fill_price: Decimal | None
    last_event_ts: datetime | None = None
    last_seq: int | None = None


@dataclass(frozen=True, slots=True)
class DecisionValues:
    """What the rule reads and writes of a decision."""

    status: str
    executed_at: datetime | None = None
    reject_reason: str = ""


@dataclass(frozen=True, slots=True)
class DecisionMove:
    """A decision transition to record."""

    from_status: str
    to_status: str


@dataclass(frozen=True, slots=True)
class OrderStep:
    """One update applied: the new values and what changed."""

    execution: ExecutionValues
    decision: DecisionValues | None
    stale: bool = False  # older than what the execution applied: nothing changed (rule 1)
    execution_moved: bool = False  # status or filled qty changed: an execution transition row
    decision_move: DecisionMove | None = None
    executed_at_set: bool = False
    reject_reason_set: bool = False

    @property
    def decision_changed(self) -> bool:
        """The decision row needs writing (a move, or `executed_at` alone)."""
        return self.decision_move is not None or self.executed_at_set


def update_is_stale(update: OrderUpdate, execution: ExecutionValues) -> bool:
    """Rule 1: older by sequence, or older by event time, than what the execution applied."""
    last_seq = execution.last_seq
    if update.seq is not None and last_seq is not None and update.seq < last_seq:
        return True
    last_ts = execution.last_event_ts
    return update.event_ts is not None and last_ts is not None and update.event_ts < last_ts


def execution_advance(execution: ExecutionValues, update: OrderUpdate) -> ExecutionValues:
    """Rules 2-4 and the last seq/time of an update that is not stale."""
    status = execution.status
    filled = execution.filled_qty
    avg = execution.avg_fill_price
    if not execution_is_final(status):
        if update.status is not None and execution_may_advance(status, update.status):
            status = update.status
        if update.filled_qty is not None:
            reported = min(update.filled_qty, execution.submitted_qty)
            if reported > filled:
                filled = reported
                if update.avg_fill_price is not None:
                    avg = update.avg_fill_price
    last_ts = execution.last_event_ts if update.event_ts is None else update.event_ts
    last_seq = execution.last_seq if update.seq is None else update.seq
    if (
        status is execution.status
        and filled is execution.filled_qty
        and last_ts is execution.last_event_ts
        and last_seq is execution.last_seq
    ):
        return execution  # nothing moved (a snapshot that repeats what we have)
    return ExecutionValues(status, execution.submitted_qty, filled, avg, last_ts, last_seq)


def decision_target(execution: ExecutionValues) -> str | None:
    """Rule 6: the decision status an execution implies (None: an unknown order status)."""
    target = ORDER_TO_DECISION.get(execution.status)
    if execution.filled_qty > 0:
        if target == SUBMITTED:
            return PARTIALLY_FILLED
        if target == REJECTED:
            return CANCELED
    return target


def order_update_apply(
    *,
    execution: ExecutionValues,
    decision: DecisionValues | None,
    update: OrderUpdate,
    now: datetime,
) -> OrderStep:
    """Apply one broker order update to an execution and its decision (the module's rule)."""
    if update_is_stale(update, execution):
        return OrderStep(execution, decision, stale=True)
    advanced = execution_advance(execution, update)
    moved = advanced.status != execution.status or advanced.filled_qty != execution.filled_qty
    if decision is None:
        return OrderStep(advanced, None, execution_moved=moved)
    target = decision_target(advanced)
    status, executed_at, reason = decision.status, decision.executed_at, decision.reject_reason
    move: DecisionMove | None = None
    if target is not None and target != status and decision_can_move(status, target):
        move = DecisionMove(status, target)
        status = target
    reason_set = move is not None and status == REJECTED and not reason
    if reason_set:
        reason = BROKER_REJECTED
    executed = advanced.filled_qty > 0 or (move is not None and status in _EXECUTED)
    executed_at_set = executed and executed_at is None
    if executed_at_set:
        executed_at = now
    return OrderStep(
        advanced,
        DecisionValues(status, executed_at, reason)
        if move is not None or executed_at_set
        else decision,
        execution_moved=moved,
        decision_move=move,
        executed_at_set=executed_at_set,
        reject_reason_set=reason_set,
    )


def order_updates_fold(
    *,
    execution: ExecutionValues,
    decision: DecisionValues | None,
    updates: Iterable[OrderUpdate],
    now: datetime,
) -> tuple[ExecutionValues, DecisionValues | None]:
    """The execution and decision after applying `updates` one by one, in the order given."""
    for update in updates:
        step = order_update_apply(execution=execution, decision=decision, update=update, now=now)
        execution, decision = step.execution, step.decision
    return execution, decision
