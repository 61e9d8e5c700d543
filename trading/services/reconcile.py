"""Reconciliation (docs/compatibility.md#reconciliation): make our executions and decisions match
the broker.

- every non-final execution is refreshed from the broker;
- every decision left in `submitting` (a crash between the broker's answer and our commit, or an
  ambiguous submit) is looked up by client order id and adopted; one still unknown to the broker
  after TRADING_SUBMIT_UNCONFIRMED_GRACE_SECONDS is closed as `submit_unconfirmed` — never
  resubmitted, since its signal is stale by then;
- open orders at the broker we have no execution for are recorded and flagged `unknown_order`;
- the account snapshot is refreshed;
- the strategy books are checked against the broker's positions (`trading.services.books`).
Runs every TRADING_RECONCILE_MS per lane and once at worker start.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from trading.brokers.base import (
    FINAL_ORDER_STATUSES,
    Broker,
    BrokerError,
    BrokerOrder,
    OrderNotFoundError,
)
from trading.firewall import OrderFirewall
from trading.lanes import LaneConfig, broker_for_lane, lane_config
from trading.metrics import ORDERS_ADOPTED, RECONCILE_RESULTS
from trading.models import Execution, TradeDecision
from trading.models.decisions import DecisionStatus, SubmitAnswer
from trading.services.accounts import account_snapshot_refresh
from trading.services.books import books_reconcile
from trading.services.cycle import broker_updates_flush
from trading.services.execution import (
    decision_answer_record,
    execution_apply_order,
    execution_record,
)
from trading.services.lanes import lane_ensure, lane_state_update
from trading.statemachine import decision_transition

logger = logging.getLogger(__name__)

BACKFILL_DAYS = 7
BACKFILL_LIMIT = 200


@dataclass
class ReconcileResult:
    account_label: str
    refreshed: int = 0
    updated: int = 0
    adopted: int = 0
    unconfirmed: int = 0
    unknown_orders: int = 0
    errors: int = 0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def reconcile_lane(*, account_label: str) -> ReconcileResult:
    """Bring a lane's orders in line with the broker: the order feed, then the open executions,
    then the decisions left `submitting`, then the broker's open orders we have no row for, then
    the account snapshot and the strategies' books."""
    lane = lane_config(account_label)
    lane_ensure(lane=lane)
    broker = broker_for_lane(lane)
    firewall = OrderFirewall(lane=lane)
    result = ReconcileResult(account_label=lane.label)
    broker_updates_flush(lane=lane)  # the feed first: most executions are then already current
    _executions_refresh(lane=lane, broker=broker, result=result)
    _submitting_recover(lane=lane, firewall=firewall, result=result)
    _open_orders_adopt(lane=lane, broker=broker, result=result)
    try:
        account_snapshot_refresh(account_label=lane.label, broker=broker)
    except BrokerError:
        result.errors += 1
    lane_state_update(account_label=lane.label, last_reconcile_at=timezone.now())
    books_reconcile(account_label=lane.label, broker=broker)
    return result


def _executions_refresh(*, lane: LaneConfig, broker: Broker, result: ReconcileResult) -> None:
    """Each open execution from the broker's view of its order."""
    for execution in Execution.objects.filter(account_label=lane.label).exclude(
        status__in=FINAL_ORDER_STATUSES
    ):
        result.refreshed += 1
        try:
            order = broker.get_order(execution.broker_order_id)
        except BrokerError as exc:
            result.errors += 1
            logger.warning(
                "reconcile: order lookup failed",
                extra={"order_id": execution.broker_order_id, "error": str(exc)},
            )
            continue
        if execution_apply_order(execution=execution, order=order, source="reconcile"):
            result.updated += 1
            RECONCILE_RESULTS.labels(account=lane.label, result="updated").inc()


def _submitting_recover(
    *, lane: LaneConfig, firewall: OrderFirewall, result: ReconcileResult
) -> None:
    """Decisions left `submitting` without an execution: adopt the broker's order, or reject
    the decision as `submit_unconfirmed` once the grace period has passed without one."""
    cutoff = timezone.now() - timedelta(days=BACKFILL_DAYS)
    grace = timezone.now() - timedelta(seconds=settings.TRADING_SUBMIT_UNCONFIRMED_GRACE_SECONDS)
    pending = TradeDecision.objects.filter(
        account_label=lane.label, status=DecisionStatus.SUBMITTING, created_at__gte=cutoff
    ).order_by("created_at")[:BACKFILL_LIMIT]
    for decision in pending:
        existing = Execution.objects.filter(
            account_label=lane.label, client_order_id=decision.client_order_id
        ).first()
        if existing is not None:
            continue
        try:
            order = firewall.lookup(decision.client_order_id)
        except OrderNotFoundError:
            if decision.updated_at < grace:
                decision_answer_record(decision_id=decision.pk, answer=SubmitAnswer.RECOVERED)
                decision_transition(
                    decision=decision,
                    to_status=DecisionStatus.REJECTED,
                    reason="submit_unconfirmed",
                    fields={"reject_reason": "submit_unconfirmed"},
                )
                result.unconfirmed += 1
                RECONCILE_RESULTS.labels(account=lane.label, result="unconfirmed").inc()
            continue
        except BrokerError:
            result.errors += 1
            continue
        decision_answer_record(decision_id=decision.pk, answer=SubmitAnswer.RECOVERED)
        execution_record(decision=decision, order=order, broker=lane.broker, adopted=True)
        result.adopted += 1
        ORDERS_ADOPTED.labels(account=lane.label, source="reconcile").inc()
        RECONCILE_RESULTS.labels(account=lane.label, result="adopted").inc()


def _open_orders_adopt(*, lane: LaneConfig, broker: Broker, result: ReconcileResult) -> None:
    """The broker's open orders we hold no execution for: ours still `submitting` are adopted,
    the others recorded as unknown."""
    try:
        open_orders = broker.list_orders(status="open")
    except BrokerError:
        result.errors += 1
        open_orders = []
    known = set(
        Execution.objects.filter(account_label=lane.label).values_list("client_order_id", flat=True)
    )
    for order in open_orders:
        if order.client_order_id in known:
            continue
        found = broker_order_record(lane=lane, order=order)
        if found.submitting is not None:
            decision_answer_record(decision_id=found.submitting.pk, answer=SubmitAnswer.RECOVERED)
            execution_record(
                decision=found.submitting, order=order, broker=lane.broker, adopted=True
            )
            result.adopted += 1
        elif found.unknown:
            result.unknown_orders += 1


@dataclass(frozen=True)
class FoundOrder:
    submitting: TradeDecision | None = None  # ours, still `submitting`: the caller adopts it
    unknown: bool = False  # not ours: recorded, flagged and counted


def broker_order_record(*, lane: LaneConfig, order: BrokerOrder) -> FoundOrder:
    """An order at the broker without an execution here (reconciliation, the gap fill): one of
    our decisions still `submitting` is handed back for adoption; one of our other decisions
    gets its execution recorded; an order torghut never sent is recorded as `unknown_order`
    (an incident) and counted."""
    match = TradeDecision.objects.filter(
        account_label=lane.label, client_order_id=order.client_order_id
    ).first()
    if match is not None and match.status == DecisionStatus.SUBMITTING:
        return FoundOrder(submitting=match)
    execution_record(
        decision=match,
        order=order,
        broker=lane.broker,
        adopted=True,
        account_label=lane.label,
        unknown=match is None,
    )
    if match is not None:
        return FoundOrder()
    RECONCILE_RESULTS.labels(account=lane.label, result="unknown_order").inc()
    logger.error(
        "order at the broker that torghut did not send",
        extra={"lane": lane.label, "client_order_id": order.client_order_id},
    )
    return FoundOrder(unknown=True)
